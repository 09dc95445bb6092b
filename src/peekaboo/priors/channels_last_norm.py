"""GroupNorm with a fast backward pass for large channels_last bfloat16 tensors on a CPU.

PyTorch's CPU kernel for GroupNorm's backward is several times slower on channels_last (NHWC) bf16 tensors
than on NCHW ones. Peekaboo backpropagates through the VAE encoder every iteration, and its first blocks run at
the full 512x512, so ``ChannelsLastGroupNorm`` keeps the native forward (fast in NHWC) and computes the
gradients itself from per-channel sums over the pixels (contiguous rows in NHWC) and two multiply-add passes.
Below ``MIN_PIXELS`` the native backward is faster (fewer, larger passes) and is kept, as it is everywhere
else: fp32 (whose NHWC kernel is as fast), NCHW tensors, GPUs, no gradient. Numbers: docs/performance.md.
"""

from __future__ import annotations

import torch
from torch import nn

MIN_PIXELS = 256 * 256  # bf16: ours is faster from this size on, the native backward below it


class _GroupNormChannelsLast(torch.autograd.Function):
    """Native forward; the backward of ``y = (x - mean) * rstd * weight + bias`` written for NHWC memory."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups: int, eps: float):
        n, c, h, w = x.shape
        y, mean, rstd = torch.native_group_norm(x, weight, bias, n, c, h * w, groups, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.groups = groups
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensors
        n, c, h, w = x.shape
        groups = ctx.groups
        per_group = c // groups
        count = h * w * per_group
        # NHWC memory viewed as (n, pixels, channels): the pixel sums below run over contiguous rows
        x_rows = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        grad_rows = grad.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(n, h * w, c)
        # Per-channel sums over the pixels. In bf16 (accumulated in fp32, rounded once) they suffice for the
        # input's gradient and skip fp32 copies of the tensors; the weight's gradient subtracts mean * grad_sum
        # from grad_x_sum, near-equal when |mean| >> std, and takes both in fp32 (bf16 products are exact there).
        if ctx.needs_input_grad[1]:
            grad_x_sum, grad_sum = (grad_rows.float() * x_rows).sum(1), grad_rows.sum(1, dtype=torch.float32)
        else:
            grad_x_sum, grad_sum = (grad_rows * x_rows).sum(1).float(), grad_rows.sum(1).float()  # (n, c)
        scale = torch.ones(c, device=x.device) if weight is None else weight.float()
        mean = mean.float().view(n, groups, 1)
        rstd = rstd.float().view(n, groups, 1)
        # per group: sums of grad*weight*x and of grad*weight
        dot = (grad_x_sum * scale).view(n, groups, per_group).sum(-1, keepdim=True)
        total = (grad_sum * scale).view(n, groups, per_group).sum(-1, keepdim=True)
        # grad_x = rstd*weight*grad + b*x + d, with b and d constant per group (the mean and variance terms)
        b = (total * mean - dot) * rstd.pow(3) / count
        d = -b * mean - total * rstd / count

        def per_channel(t: torch.Tensor) -> torch.Tensor:
            return t.expand(n, groups, per_group).reshape(n, 1, c)

        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            a = (rstd * scale.view(1, groups, per_group)).reshape(n, 1, c)
            rows = torch.addcmul(per_channel(d).to(x.dtype), grad_rows, a.to(x.dtype))
            rows.addcmul_(x_rows, per_channel(b).to(x.dtype))
            grad_x = rows.view(n, h, w, c).permute(0, 3, 1, 2)
        if weight is not None and ctx.needs_input_grad[1]:  # sum over pixels of grad * (x - mean) * rstd
            mean_c, rstd_c = per_channel(mean).view(n, c), per_channel(rstd).view(n, c)
            grad_weight = ((grad_x_sum - mean_c * grad_sum) * rstd_c).sum(0).to(weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_sum.sum(0).to(ctx.bias_dtype)
        return grad_x, grad_weight, grad_bias, None, None


class ChannelsLastGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters and outputs) that takes the NHWC backward for large bf16 CPU tensors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and x.dtype == torch.bfloat16
            and x.dim() == 4
            and x.shape[-2] * x.shape[-1] >= MIN_PIXELS
            and torch.is_grad_enabled()
            and (x.requires_grad or (self.affine and self.weight.requires_grad))
            and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous()
        ):
            return _GroupNormChannelsLast.apply(x, self.weight, self.bias, self.num_groups, self.eps)
        return super().forward(x)


def use_channels_last_group_norm(module: nn.Module) -> int:
    """Swap every ``nn.GroupNorm`` inside ``module`` for a ``ChannelsLastGroupNorm`` sharing its parameters.

    Returns how many were swapped."""
    norms = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if type(child) is nn.GroupNorm
    ]
    for parent, name, child in norms:
        norm = ChannelsLastGroupNorm(child.num_groups, child.num_channels, child.eps, affine=False)
        norm.affine, norm.weight, norm.bias = child.affine, child.weight, child.bias
        setattr(parent, name, norm)
    return len(norms)
