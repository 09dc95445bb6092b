"""The NHWC GroupNorm backward: the same gradients as torch's, taken only where it is the faster one."""

import pytest
import torch
from torch import nn

from conftest import relative_error
from peekaboo.priors.channels_last_norm import MIN_PIXELS, ChannelsLastGroupNorm, use_channels_last_group_norm

SIDE = 256  # MIN_PIXELS
assert SIDE * SIDE >= MIN_PIXELS


def norm_pair(channels: int, groups: int, dtype: torch.dtype) -> tuple[nn.GroupNorm, ChannelsLastGroupNorm]:
    torch.manual_seed(0)
    native = nn.GroupNorm(groups, channels, eps=1e-6)
    with torch.no_grad():
        native.weight.uniform_(0.5, 1.5)
        native.bias.uniform_(-0.5, 0.5)
    ours = ChannelsLastGroupNorm(groups, channels, eps=1e-6)
    ours.load_state_dict(native.state_dict())
    return native.to(dtype), ours.to(dtype)


def gradients(norm: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple:
    x = x.detach().clone().requires_grad_(True)
    norm.zero_grad(set_to_none=True)
    out = norm(x)
    out.backward(grad)
    return out.detach(), x.grad, norm.weight.grad, norm.bias.grad, out.grad_fn


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "trainable"])
@pytest.mark.parametrize(("offset", "spread"), [(0.5, 2.0), (8.0, 1.0)])  # the second: |mean| >> std
def test_nhwc_backward_matches_float64_about_as_closely_as_torchs_own(offset, spread, frozen):
    native, ours = norm_pair(64, 32, torch.bfloat16)
    ours.requires_grad_(not frozen)
    torch.manual_seed(1)
    x = (torch.randn(2, 64, SIDE, SIDE) * spread + offset).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 64, SIDE, SIDE).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    out_n, gx_n, gw_n, gb_n, fn_n = gradients(native, x, grad)
    out_o, gx_o, gw_o, gb_o, fn_o = gradients(ours, x, grad)
    assert type(fn_n).__name__ == "NativeGroupNormBackward0" and "ChannelsLast" in type(fn_o).__name__
    assert torch.equal(out_o, out_n)  # the native forward
    assert gx_o.is_contiguous(memory_format=torch.channels_last)  # the next convolution's layout

    reference = nn.GroupNorm(32, 64, eps=1e-6).double()
    reference.load_state_dict(native.state_dict())
    _, gx_r, gw_r, gb_r, _ = gradients(reference, x.double(), grad.double())
    compared = [(gx_o, gx_n, gx_r, "x")]
    if frozen:
        assert gw_o is None and gb_o is None
    else:
        compared += [(gw_o, gw_n, gw_r, "weight"), (gb_o, gb_n, gb_r, "bias")]
    for mine, torchs, exact, name in compared:
        # torch's own error is the bf16 rounding of its result (2e-3 to 3e-3 here); ours stays within 2x of it
        assert relative_error(mine, exact) < 2 * relative_error(torchs, exact), name


@pytest.mark.parametrize(
    ("dtype", "side", "channels_last", "grad"),
    [
        (torch.float32, SIDE, True, True),  # fp32's own NHWC kernel is as fast
        (torch.bfloat16, 128, True, True),  # too small: the native kernel is faster
        (torch.bfloat16, SIDE, False, True),  # NCHW
        (torch.bfloat16, SIDE, True, False),  # no gradient wanted
    ],
)
def test_everywhere_else_torchs_kernel_runs(dtype, side, channels_last, grad):
    native, ours = norm_pair(32, 8, dtype)
    ours.requires_grad_(grad)
    x = torch.randn(1, 32, side, side, dtype=dtype, requires_grad=grad)
    if channels_last:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(grad)
    out = ours(x)
    assert torch.equal(out, native(x))
    assert out.grad_fn is None if not grad else type(out.grad_fn).__name__ == "NativeGroupNormBackward0"


def test_swapping_keeps_parameters_state_dict_and_outputs():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        norm_num_groups=8,
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
    )
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    before = vae.encode(x).latent_dist.mean
    keys, parameters = list(vae.state_dict()), {id(p) for p in vae.parameters()}
    count = sum(type(m) is nn.GroupNorm for m in vae.modules())

    assert use_channels_last_group_norm(vae) == count > 0
    assert not any(type(m) is nn.GroupNorm for m in vae.modules())
    assert list(vae.state_dict()) == keys and {id(p) for p in vae.parameters()} == parameters
    assert torch.equal(vae.encode(x).latent_dist.mean, before)
    assert use_channels_last_group_norm(vae) == 0  # idempotent


def test_channels_last_priors_get_it_in_the_vae_only(tiny_prior, peekaboo_cache):
    from peekaboo.priors.tiny_sd import build_tiny_sd

    assert not any(isinstance(m, ChannelsLastGroupNorm) for m in tiny_prior.vae.modules())
    prior = build_tiny_sd(seed=0, cache_dir=str(peekaboo_cache), dtype="bf16", channels_last=True)
    assert any(isinstance(m, ChannelsLastGroupNorm) for m in prior.vae.modules())
    assert not any(isinstance(m, ChannelsLastGroupNorm) for m in prior.unet.modules())
