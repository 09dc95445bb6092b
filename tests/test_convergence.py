"""When a curve settles (the implicit-vs-pixel ablation's summary), on synthetic curves with known answers."""

import math

import numpy as np
import pytest

from peekaboo.evaluation.convergence import describe_settling, settling_iteration


def test_monotone_approach_settles_where_it_enters_the_band():
    curve = 1 - np.exp(-np.arange(300) / 20)
    # |c_k - c_final| <= 0.05 c_final  <=>  exp(-k/20) <= 0.05 c_final + exp(-299/20)  <=>  k >= 59.9...
    expected = math.ceil(-20 * math.log(0.05 * curve[-1] + math.exp(-299 / 20)))
    assert expected == 60 and settling_iteration(curve) == 60
    assert settling_iteration(curve, tolerance=0.01) == 93  # 20 ln(100) = 92.1


def test_oscillation_settles_after_its_last_excursion():
    curve = [0.0, 2.0, 0.5, 1.2, 0.97, 1.03, 0.99, 1.01] + [1.0] * 20
    assert settling_iteration(curve) == 4  # 1.2 is the last value more than 5% away from 1.0
    assert settling_iteration(curve, tolerance=0.02) == 6


def test_curves_that_never_settle():
    ramp = np.linspace(0, 1, 101)  # enters [0.95, 1] only for its last 6 points, fewer than 10% of 101
    assert settling_iteration(ramp) is None
    assert settling_iteration(ramp, hold=0.05) == 95 and settling_iteration(ramp, hold=0) == 95
    assert settling_iteration([0.0, 1.0] * 50) is None  # an undamped oscillation
    assert settling_iteration(np.exp(np.arange(200) / 20)) is None  # still growing
    assert settling_iteration([1.0, 2.0, float("nan")]) is None


def test_curves_ending_at_zero_and_constant_ones():
    assert settling_iteration([3.0, 1.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]) == 3
    assert settling_iteration([1.0, 0.5] + [1e-3] * 20) == 2
    assert settling_iteration([0.0] * 10) == 0
    assert settling_iteration([0.25] * 50) == 0 and settling_iteration([7.0]) == 0
    assert settling_iteration([1.0, float("nan")] + [1.0] * 30) == 2  # a NaN counts as outside the band


def test_bad_arguments_and_descriptions():
    with pytest.raises(ValueError, match="non-empty"):
        settling_iteration([])
    with pytest.raises(ValueError, match="hold"):
        settling_iteration([1.0], hold=2)
    assert describe_settling(None) == "never" and describe_settling(12) == "iteration 12"
