"""The proxy bilateral filter: weights, invariants, a brute-force reference and its exact backward pass."""

import math

import pytest
import torch

from peekaboo.params.bilateral import BilateralOperator, bilateral_weights


def brute_force(x: torch.Tensor, guide: torch.Tensor, k: int, tol: float, sigma: float) -> torch.Tensor:
    """Per-pixel loops straight from the definition (float64)."""
    n, c, h, w = x.shape
    r = k // 2
    out = torch.zeros_like(x)
    for b in range(n):
        for y in range(h):
            for xx in range(w):
                num, den = torch.zeros(c, dtype=x.dtype), 0.0
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        yy, xq = y + dy, xx + dx
                        if not (0 <= yy < h and 0 <= xq < w):
                            continue
                        d = torch.linalg.vector_norm(guide[b, :, y, xx] - guide[b, :, yy, xq])
                        wgt = math.exp(-(dy * dy + dx * dx) / (2 * sigma**2)) * math.exp(-0.5 * (d / tol) ** 2)
                        num += wgt * x[b, :, yy, xq]
                        den += wgt
                out[b, :, y, xx] = num / den
    return out


def test_weights_sum_to_one_and_ignore_outside():
    guide = torch.rand(2, 3, 7, 9)
    w = bilateral_weights(guide, kernel_size=3, tolerance=0.08, sigma=5.0)
    assert w.shape == (2, 9, 7, 9)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 7, 9))
    # offsets are row-major over (dy, dx) in [-1, 1]^2: top row offsets (dy = -1) are outside at y = 0
    assert torch.all(w[:, 0:3, 0, :] == 0)
    assert torch.all(w[:, 6:9, -1, :] == 0)
    assert torch.all(w[:, [0, 3, 6], :, 0] == 0)
    assert torch.all(w[:, [2, 5, 8], :, -1] == 0)


def test_weights_across_edges_are_zero_not_subnormal():
    """Subnormal weights would make every application several times slower on a CPU (bilateral.py)."""
    guide = torch.zeros(1, 3, 8, 8)
    guide[..., 4:] = 1.0  # a hard edge: exp(-0.5 * 3 / 0.08^2) underflows to ~1e-102
    w = bilateral_weights(guide, kernel_size=3, tolerance=0.08, sigma=5.0)
    tiny = torch.finfo(torch.float32).tiny
    assert not torch.any((w > 0) & (w < tiny)) and torch.all(w[:, 2, :, 3] == 0)  # right neighbour across it
    torch.testing.assert_close(w.sum(1), torch.ones(1, 8, 8))
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    expected = x
    for _ in range(3):
        expected = brute_force(expected, guide.double(), 3, 0.08, 5.0)
    torch.testing.assert_close(BilateralOperator(w.double(), 3)(x), expected)


def test_constant_input_stays_constant():
    guide = torch.rand(1, 3, 12, 12)
    w = bilateral_weights(guide)
    x = torch.full((1, 1, 12, 12), 0.37)
    torch.testing.assert_close(BilateralOperator(w, 40)(x), x)


def test_step_edge_in_guide_blocks_smoothing():
    guide = torch.zeros(1, 3, 16, 16)
    guide[..., 8:] = 1.0  # a hard vertical edge
    x = torch.zeros(1, 1, 16, 16)
    x[..., 8:] = 1.0  # the signal has the same edge
    out = BilateralOperator(bilateral_weights(guide, tolerance=0.08), 40)(x)
    assert out[..., :8].abs().max() < 1e-6  # nothing leaks across the edge
    assert (out[..., 8:] - 1).abs().max() < 1e-6
    # without an edge in the guide the same signal is smoothed across
    flat = BilateralOperator(bilateral_weights(torch.zeros_like(guide)), 40)(x)
    assert flat[0, 0, 8, 7] > 0.2


@pytest.mark.parametrize("fused", [False, True], ids=["per_tap", "fused"])  # the CPU and the GPU strategy
@pytest.mark.parametrize("k", [3, 5])
def test_matches_brute_force_reference(k, fused):
    torch.manual_seed(0)
    guide = torch.rand(2, 4, 6, 7, dtype=torch.float64)  # 4 channels: RGB + depth
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    w = bilateral_weights(guide, kernel_size=k, tolerance=0.3, sigma=5.0).double()
    expected = x
    for _ in range(3):
        expected = brute_force(expected, guide, k, 0.3, 5.0)
    torch.testing.assert_close(BilateralOperator(w, 3, fused)(x), expected)


@pytest.mark.parametrize("fused", [False, True], ids=["per_tap", "fused"])
def test_backward_is_the_exact_transpose(fused):
    torch.manual_seed(1)
    guide = torch.rand(1, 3, 5, 6, dtype=torch.float64)
    w = bilateral_weights(guide, tolerance=0.5).double()
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: BilateralOperator(w, 4, fused)(v), (x,))


def test_operator_follows_its_module_and_skips_zero_iterations():
    """``BilateralOperator`` lays the taps out once; they move with the parametrization (``.to``) and cast to
    the input's dtype; 0 iterations is the identity (no copy)."""
    guide = torch.rand(2, 3, 9, 8)
    operator = BilateralOperator(bilateral_weights(guide), 5).double()
    assert operator.taps.dtype == torch.float64 and operator.taps.shape == (2, 1, 3, 3, 9 * 10)
    x = torch.randn(2, 1, 9, 8)
    torch.testing.assert_close(operator(x), BilateralOperator(bilateral_weights(guide), 5)(x))
    assert BilateralOperator(bilateral_weights(guide), 0)(x) is x
    assert dict(operator.state_dict()) == {}  # derived from the guide: never checkpointed


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        bilateral_weights(torch.rand(1, 3, 4, 4), kernel_size=4)
