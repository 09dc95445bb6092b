"""The "proxy" bilateral filter of the original Peekaboo code, as a fixed sparse linear operator.

Weights are computed once per image from a guide (RGB, or RGB + depth) and reused at every forward: a
k x k neighbourhood, spatial Gaussian x range Gaussian on the guide distance, zero weight outside the
image, normalised to sum 1 per pixel. Applied ``iterations`` times in a row to the alpha logits.

Why not ``kornia.filters.joint_bilateral_blur``: it recomputes the range weights at every call (40 calls
per forward) and materialises an unfolded (C*k*k, H*W) tensor per application, which autograd keeps for
the backward pass. Here the operator is linear in its input with constant weights, so the backward pass
is the transposed operator applied ``iterations`` times and nothing is stored. ``make bench`` measures
both (``bilateral`` rows): 40 applications forward and backward at 256x256 took 6.9 ms here against
kornia's 303 ms (2 CPU threads), and kornia kept 250 MiB for the backward pass (1.6 GiB for 8 masks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NEGLIGIBLE_WEIGHT = 1e-12  # normalised neighbour weights below this are 0 (no subnormal arithmetic)


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
    normalised = stacked / stacked.sum(1, keepdim=True)
    # Across an edge the range weight underflows towards subnormal floats (exp(-40) and below), and 40
    # applications of the operator then run on subnormals, which x86 CPUs process several times slower (see
    # docs/performance.md). A weight below 1e-12 cannot change a float32 sum that also holds the centre
    # pixel's weight (>= 1/k^2), so it is set to 0.
    return normalised.masked_fill(normalised < NEGLIGIBLE_WEIGHT, 0.0)


def _transposed_weights(weights: torch.Tensor) -> torch.Tensor:
    """Weights of the transposed operator, as a gather: (A^T g)[p] = sum_j w_j[p - o_j] g[p - o_j].

    Offsets are symmetric (o_{k*k-1-j} = -o_j in row-major order), so entry i pairs with the forward's
    neighbour i and holds w_j[p - o_j] for j = k*k-1-i (zero where p - o_j lies outside the image).
    """
    k = math.isqrt(weights.shape[1])
    r, (h, w) = k // 2, weights.shape[-2:]
    padded = F.pad(weights, (r, r, r, r))
    shifted = []
    for j in range(k * k):
        dy, dx = divmod(j, k)  # o_j = (dy - r, dx - r): w_j[p - o_j] starts at r - o_j = 2r - d
        shifted.append(padded[:, j, 2 * r - dy : 2 * r - dy + h, 2 * r - dx : 2 * r - dx + w])
    return torch.stack(shifted[::-1], dim=1)


def _flat_taps(weights: torch.Tensor) -> torch.Tensor:
    """(N, k*k, H, W) weights -> (N, 1, k, k, H * (W + 2r)): rows widened by r zero columns on each side.

    In this layout (the flat buffers of ``_repeat``) every neighbour of every pixel is one fixed offset away,
    so each tap's view of the input is a contiguous run; the zero columns keep the borders at zero.
    """
    n, kk, h, w = weights.shape
    k = math.isqrt(kk)
    r = k // 2
    return F.pad(weights, (r, r)).reshape(n, 1, k, k, h * (w + 2 * r))


def _repeat(x: torch.Tensor, taps: torch.Tensor, iterations: int, fused: bool) -> torch.Tensor:
    """``iterations`` times ``out[p] = sum_j taps_j[p] * x[p + o_j]`` (zero outside the image).

    Two flat, zero-bordered buffers per image (rows widened by r, r guard elements at each end) hold the
    input and output in turn, so every neighbour view is a contiguous run at a fixed offset and nothing is
    copied between applications. ``fused``: one multiply over all k*k views and one sum per application (two
    kernels: what counts on a GPU); otherwise one multiply and k*k - 1 fused multiply-adds streaming through
    the cache, the CPU default (faster at SD sizes). Small masks would be faster fused, but the fused form sums
    in another order, and on the toy world that rounding alone changes masks of ``param=fourier_bilateral``;
    a rule on the batch's size would let a mask's rounding depend on how many masks share its batch, so CPUs
    keep the per-tap form at every size (numbers: docs/performance.md).
    """
    n, c, h, w = x.shape
    k = taps.shape[2]
    r = k // 2
    wp = w + 2 * r
    length, span = (h + 2 * r) * wp + 2 * r, h * wp
    buffers = [x.new_zeros(n, c, length), x.new_zeros(n, c, length)]
    grid = [b[:, :, r : r + (h + 2 * r) * wp].view(n, c, h + 2 * r, wp) for b in buffers]
    grid[0][:, :, r : r + h, r : r + w] = x
    start = r + r * wp  # the first widened row of the image
    targets = [b[:, :, start : start + span] for b in buffers]
    if fused:
        # all k*k views at once: neighbour (dy, dx) of flat position p is p + (dy - r) wp + (dx - r)
        views = [b.as_strided((n, c, k, k, span), (c * length, length, wp, 1, 1)) for b in buffers]
        product = x.new_empty(n, c, k, k, span)
        for i in range(iterations):
            torch.mul(taps, views[i % 2], out=product)
            torch.sum(product, dim=(2, 3), out=targets[(i + 1) % 2])
    else:
        per_tap = [taps[:, :, dy, dx] for dy in range(k) for dx in range(k)]
        views = [[b[:, :, dy * wp + dx : dy * wp + dx + span] for dy in range(k) for dx in range(k)] for b in buffers]
        for i in range(iterations):
            source, target = views[i % 2], targets[(i + 1) % 2]
            torch.mul(per_tap[0], source[0], out=target)
            for tap, view in zip(per_tap[1:], source[1:], strict=True):
                target.addcmul_(tap, view)
    return grid[iterations % 2][:, :, r : r + h, r : r + w].contiguous()


class _RepeatedBilateral(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, transposed_taps, iterations: int, fused: bool) -> torch.Tensor:
        ctx.save_for_backward(transposed_taps)
        ctx.iterations, ctx.fused = iterations, fused
        return _repeat(x, taps, iterations, fused)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (transposed_taps,) = ctx.saved_tensors
        return _repeat(grad.contiguous(), transposed_taps, ctx.iterations, ctx.fused), None, None, None, None


class BilateralOperator(nn.Module):
    """The bilateral operator A of ``bilateral_weights`` applied ``iterations`` times, differentiable in x.

    The taps of A and of A^T (for the backward pass) are laid out once per image, in buffers that follow the
    module across devices. ``fused`` picks ``_repeat``'s strategy; None: fused on GPUs, per tap on CPUs.
    """

    def __init__(self, weights: torch.Tensor, iterations: int, fused: bool | None = None):
        super().__init__()
        self.iterations = iterations
        self.fused = fused
        self.register_buffer("taps", _flat_taps(weights), persistent=False)
        self.register_buffer("transposed_taps", _flat_taps(_transposed_weights(weights)), persistent=False)

    @classmethod
    def merge(cls, operators: list[BilateralOperator]) -> BilateralOperator:
        """One operator over the images of several (their taps stacked), for one batched filter of their units."""
        merged = cls.__new__(cls)
        nn.Module.__init__(merged)
        merged.iterations, merged.fused = operators[0].iterations, operators[0].fused
        for name in ("taps", "transposed_taps"):
            merged.register_buffer(name, torch.cat([getattr(op, name) for op in operators]), persistent=False)
        return merged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.iterations == 0:
            return x
        fused = x.device.type != "cpu" if self.fused is None else self.fused
        taps, transposed = self.taps.to(x.dtype), self.transposed_taps.to(x.dtype)
        return _RepeatedBilateral.apply(x.contiguous(), taps, transposed, self.iterations, fused)
