"""When does a per-iteration curve settle? (The paper's implicit-vs-pixel ablation, appendix B.2, Fig. 12.)

A curve settles at the first iteration after which it stays within ``tolerance`` (relative) of its final value.
Taken literally every curve settles somewhere (its last point is within any band of itself), so a curve that only
enters the band at the very end, like one still growing steadily, has not settled: it must stay inside for at
least ``hold`` of its iterations, otherwise the answer is "never".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def settling_iteration(curve: Sequence[float] | np.ndarray, tolerance: float = 0.05, hold: float = 0.1) -> int | None:
    """The first index after which ``curve`` stays within ``tolerance * |final|`` of its final value, or None.

    None ("never") when the curve stays inside the band for fewer than ``ceil(hold * len(curve))`` points (at
    least one), or when its final value is not finite. A curve that ends at 0 must reach exactly 0 (the band is
    empty); NaNs count as outside the band.
    """
    values = np.asarray(curve, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("settling_iteration needs a non-empty curve")
    if tolerance < 0 or not 0 <= hold <= 1:
        raise ValueError(f"tolerance must be >= 0 and hold in [0, 1], got {tolerance} and {hold}")
    final = values[-1]
    if not np.isfinite(final):
        return None
    outside = np.flatnonzero(~(np.abs(values - final) <= tolerance * abs(final)))
    start = 0 if outside.size == 0 else int(outside[-1]) + 1
    return start if values.size - start >= max(1, math.ceil(hold * values.size)) else None


def describe_settling(iteration: int | None) -> str:
    """'iteration N' or 'never', as the summaries print it."""
    return "never" if iteration is None else f"iteration {iteration}"
