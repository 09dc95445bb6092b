"""The "proxy" bilateral filter of the original Peekaboo code, as a fixed sparse linear operator.

Weights are computed once per image from a guide (RGB, or RGB + depth) and reused at every forward: a
k x k neighbourhood, spatial Gaussian x range Gaussian on the guide distance, zero weight outside the
image, normalised to sum 1 per pixel. Applied ``iterations`` times in a row to the alpha logits.

Why not ``kornia.filters.joint_bilateral_blur``: it recomputes the range weights at every call (40 calls
per forward) and materialises an unfolded (C*k*k, H*W) tensor per application, which autograd keeps for
the backward pass. Here the operator is linear in its input with constant weights, so the backward pass
is the transposed operator applied ``iterations`` times and nothing is stored. ``make bench`` measures
both (``bilateral`` rows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bilateral_weights(
    guide: torch.Tensor, kernel_size: int = 3, tolerance: float = 0.08, sigma: float = 5.0
) -> torch.Tensor:
    """Normalised neighbour weights (N, k*k, H, W) for guides (N, C, H, W).

    Offset j = (dy, dx) in row-major order over [-r, r]^2; weight of neighbour (y+dy, x+dx) for pixel (y, x)
    is ``exp(-(dy^2+dx^2)/(2 sigma^2)) * exp(-0.5 (||g(y,x) - g(y+dy,x+dx)|| / tolerance)^2)``,
    zero where the neighbour lies outside the image.
    """
    if kernel_size % 2 != 1 or kernel_size < 1:
        raise ValueError(f"bilateral kernel_size must be a positive odd integer, got {kernel_size}")
    n, _, h, w = guide.shape
    r = kernel_size // 2
    guide = guide if guide.dtype == torch.float64 else guide.float()  # float64 kept for exact checks
    padded = F.pad(guide, (r, r, r, r))
    inside = F.pad(torch.ones(1, 1, h, w, device=guide.device, dtype=guide.dtype), (r, r, r, r))
    weights = []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            neighbour = padded[:, :, r + dy : r + dy + h, r + dx : r + dx + w]
            valid = inside[:, :, r + dy : r + dy + h, r + dx : r + dx + w]
            dist2 = (guide - neighbour).square().sum(1, keepdim=True)
            spatial = math.exp(-(dy * dy + dx * dx) / (2.0 * sigma * sigma))
            weights.append(spatial * torch.exp(-0.5 * dist2 / (tolerance * tolerance)) * valid)
    stacked = torch.cat(weights, dim=1)
    return stacked / stacked.sum(1, keepdim=True)


def _apply(x: torch.Tensor, taps: torch.Tensor, transpose: bool) -> torch.Tensor:
    """One application of the operator (or its transpose) to x (N, C, H, W); taps (k*k, N, 1, H, W) contiguous.

    One fused in-place multiply-add per neighbour (``addcmul_``): at the small sizes of the toy world and of
    batched masks the cost is the number of kernel launches, not arithmetic.
    """
    n, c, h, w = x.shape
    k = int(math.isqrt(taps.shape[0]))
    r = k // 2
    if not transpose:
        padded = F.pad(x, (r, r, r, r))
        out = torch.zeros_like(x)
        for j in range(k * k):
            dy, dx = divmod(j, k)
            out.addcmul_(taps[j], padded[:, :, dy : dy + h, dx : dx + w])
        return out
    # (A^T g)[p] = sum_j w_j[p - o_j] g[p - o_j]: scatter each weighted term back by its offset.
    padded_out = x.new_zeros(n, c, h + 2 * r, w + 2 * r)
    for j in range(k * k):
        dy, dx = divmod(j, k)
        padded_out[:, :, dy : dy + h, dx : dx + w].addcmul_(taps[j], x)
    return padded_out[:, :, r : r + h, r : r + w]


class _RepeatedBilateral(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weights: torch.Tensor, iterations: int) -> torch.Tensor:
        taps = weights.transpose(0, 1).unsqueeze(2).contiguous()  # one contiguous (N, 1, H, W) map per neighbour
        ctx.save_for_backward(taps)
        ctx.iterations = iterations
        for _ in range(iterations):
            x = _apply(x, taps, transpose=False)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (taps,) = ctx.saved_tensors
        grad = grad.contiguous()
        for _ in range(ctx.iterations):
            grad = _apply(grad, taps, transpose=True)
        return grad, None, None


def apply_bilateral(x: torch.Tensor, weights: torch.Tensor, iterations: int) -> torch.Tensor:
    """Apply the precomputed bilateral operator ``iterations`` times to x (N, C, H, W); differentiable in x."""
    if iterations == 0:
        return x
    return _RepeatedBilateral.apply(x, weights.to(x.dtype), iterations)
