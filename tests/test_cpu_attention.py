"""bf16 attention on a CPU in blocks: flash's accuracy, any blocking, SDPA where it must be, the right processor."""

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0

from conftest import relative_error
from peekaboo.priors import stable_diffusion
from peekaboo.priors.configs import Attention
from peekaboo.priors.cpu_attention import BlockedAttention, attend_in_blocks, bf16_products, blocked_attention_pays
from peekaboo.priors.stable_diffusion import StableDiffusionPrior, unet_attention
from peekaboo.priors.tiny_sd import build_tiny_sd

CPU = torch.device("cpu")


def qkv(keys: int, queries: int = 300, heads: int = 4, dim: int = 40, seed: int = 0):
    """bf16 queries of standard deviation 2 (scores of standard deviation ~2, as in SD's large layers)."""
    generator = torch.Generator().manual_seed(seed)
    q = 2 * torch.randn(2, heads, queries, dim, generator=generator)
    k, v = (torch.randn(2, heads, keys, dim, generator=generator) for _ in range(2))
    return q.bfloat16(), k.bfloat16(), v.bfloat16()


@pytest.mark.parametrize("keys", [300, 77])
def test_blocks_are_as_accurate_as_flash_whatever_the_blocking(keys):
    q, k, v = qkv(keys)
    scale = 0.21  # not the default 40^-0.5: the scale must reach the scores
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=scale)
    flash = relative_error(F.scaled_dot_product_attention(q, k, v, scale=scale), exact)
    # one block per call, ragged row blocks (300 = 2 x 128 + 44), several heads per block
    outputs = [attend_in_blocks(q, k, v, scale, budget) for budget in (2**20, 128 * keys, 4 * 300 * keys)]
    # Where `auto` picks the blocks (AVX512-BF16 without AMX) they match flash's error. On AMX CPUs, where `auto`
    # keeps SDPA, flash's bf16 kernel is more accurate (0.0018 vs 0.0023 measured on a Xeon with AMX); the blocks
    # must still stay far below the 1.2% of bf16 scores.
    bound = 1.05 if blocked_attention_pays(CPU, torch.bfloat16) else 1.35
    for out in outputs:
        assert out.dtype == torch.bfloat16 and out.shape == q.shape
        assert relative_error(out, exact) <= bound * flash, (relative_error(out, exact), flash)
    for out in outputs[1:]:
        assert relative_error(out, outputs[0]) < 2e-3  # blockings differ by bf16 rounding of the output at most


def test_bf16_products_round_fp32_inputs_and_restore_the_setting():
    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    with pytest.raises(RuntimeError, match="boom"), bf16_products():
        assert matmul.fp32_precision == "bf16"
        raise RuntimeError("boom")
    assert matmul.fp32_precision == before
    q, k, v = (t.float() for t in qkv(77))
    with pytest.raises(ValueError, match="takes bf16 tensors"):
        attend_in_blocks(q, k, v, 0.1)


def test_processor_falls_back_to_sdpa_for_gradients_masks_and_fp32():
    q, k, v = qkv(77)
    processor = BlockedAttention()
    mask = torch.zeros(2, 4, 300, 77, dtype=torch.bfloat16)
    mask[..., :10] = -1e4
    assert torch.equal(processor.attend(q, k, v, 0.2, mask), F.scaled_dot_product_attention(q, k, v, mask, scale=0.2))
    q32 = q.float().requires_grad_(True)
    out = processor.attend(q32, k.float(), v.float(), 0.2, None)
    assert torch.equal(out, F.scaled_dot_product_attention(q32, k.float(), v.float(), scale=0.2))
    out.sum().backward()
    assert q32.grad is not None and q32.grad.abs().sum() > 0
    q16 = q.clone().requires_grad_(True)
    assert torch.equal(processor.attend(q16, k, v, 0.2, None), F.scaled_dot_product_attention(q16, k, v, scale=0.2))
    with torch.no_grad():
        assert torch.equal(processor.attend(q, k, v, 0.2, None), attend_in_blocks(q, k, v, 0.2))


def test_choice_of_unet_processor(monkeypatch):
    assert not blocked_attention_pays(CPU, torch.float32)
    assert not blocked_attention_pays(torch.device("cuda"), torch.bfloat16)
    monkeypatch.setattr(stable_diffusion, "blocked_attention_pays", lambda device, dtype: dtype == torch.bfloat16)
    assert isinstance(unet_attention(Attention.auto, CPU, torch.bfloat16, compiled=False), BlockedAttention)
    assert isinstance(unet_attention(Attention.auto, CPU, torch.float32, compiled=False), AttnProcessor2_0)
    assert isinstance(unet_attention(Attention.auto, CPU, torch.bfloat16, compiled=True), AttnProcessor2_0)
    assert isinstance(unet_attention(Attention.sdpa, CPU, torch.bfloat16, compiled=False), AttnProcessor2_0)
    assert unet_attention(Attention.default, CPU, torch.bfloat16, compiled=False) is None


def test_bf16_unet_with_blocked_attention_matches_sdpa(monkeypatch, tiny_prior, peekaboo_cache):
    monkeypatch.setattr(stable_diffusion, "blocked_attention_pays", lambda device, dtype: True)
    prior = build_tiny_sd(seed=0, cache_dir=str(peekaboo_cache), dtype="bf16", channels_last=True)
    assert {type(p) for p in prior.unet.attn_processors.values()} == {BlockedAttention}
    installed = {net: dict(net.attn_processors) for net in (prior.unet, prior.vae)}
    prior.to("cpu")  # moving keeps the processors (a compiled UNet would recompile for new objects)
    for net, processors in installed.items():
        assert all(net.attn_processors[name] is processor for name, processor in processors.items())
    generator = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, *prior.latent_shape, generator=generator)
    timesteps = torch.tensor([300, 700])
    embeddings = tiny_prior.embed_prompts(["a dog", "a cat"])
    exact = tiny_prior.predict_noise(noisy, timesteps, embeddings)  # fp32, same weights
    blocked = relative_error(prior.predict_noise(noisy, timesteps, embeddings), exact)
    prior.unet.set_attn_processor(AttnProcessor2_0())
    fused = relative_error(prior.predict_noise(noisy, timesteps, embeddings), exact)
    assert blocked < 1.1 * fused  # bf16's rounding through the UNet either way


def test_bad_attention_value_is_named(tiny_prior):
    with pytest.raises(ValueError, match="model.attention must be one of auto, sdpa, default, got 'flash'"):
        StableDiffusionPrior.from_modules(tiny_prior.unet, tiny_prior.vae, tiny_prior.alphas_cumprod, attention="flash")
