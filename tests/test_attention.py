"""Attention capture: right layers, shapes and sums, the UNet output unchanged, processors restored."""

import pytest
import torch

from peekaboo.baselines.attention import attention_layers, capture_attention


@pytest.fixture(scope="module")
def unet_inputs(tiny_prior):
    generator = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, *tiny_prior.latent_shape, generator=generator)
    timesteps = torch.tensor([300, 700])
    embeddings = tiny_prior.embed_prompts(["a dog", "a cat"])
    return noisy, timesteps, embeddings, tiny_prior.predict_noise(noisy, timesteps, embeddings)


def processors(unet):
    return dict(unet.attn_processors)


def test_layers_have_sd_block_resolutions(tiny_prior):
    layers = attention_layers(tiny_prior.unet, 8)
    by_kind = {
        kind: sorted((layer.block, layer.resolution) for layer in layers if layer.kind == kind)
        for kind in ("self", "cross")
    }
    # tiny_sd: attention in down blocks 0-1, the mid block and up blocks 1-2 (two layers each), latent 8x8
    expected = [("down", 4), ("down", 8), ("mid", 2), ("up", 4), ("up", 4), ("up", 8), ("up", 8)]
    assert by_kind == {"self": expected, "cross": expected}
    assert {layer.heads for layer in layers} == {8}


def test_self_attention_maps_shapes_rows_and_unchanged_output(tiny_prior, unet_inputs):
    noisy, timesteps, embeddings, reference = unet_inputs
    before = processors(tiny_prior.unet)
    with capture_attention(tiny_prior.unet, 8, "self") as store:
        output = tiny_prior.predict_noise(noisy, timesteps, embeddings)
        installed = processors(tiny_prior.unet)
    assert torch.allclose(output, reference, atol=1e-5), (output - reference).abs().max()
    assert {r: store.count(r) for r in store} == {8: 3, 4: 3, 2: 1}  # layers per resolution, one call
    for r in store:
        maps = store.mean(r)
        assert maps.shape == (2, r * r, r * r) and maps.dtype == torch.float32
        assert torch.allclose(maps.sum(-1), torch.ones(2, r * r), atol=1e-5)
    # only the self-attention layers were swapped, and every processor is the original object again
    swapped = {name for name in before if installed[name] is not before[name]}
    assert swapped == {name for name in before if ".attn1." in name}
    assert all(tiny_prior.unet.attn_processors[name] is proc for name, proc in before.items())


def test_cross_attention_per_layer_heads_match_resolution_means(tiny_prior, unet_inputs):
    noisy, timesteps, embeddings, reference = unet_inputs
    with capture_attention(tiny_prior.unet, 8, "cross", keep_heads=True, group="layer", max_elements=1) as kept:
        output = tiny_prior.predict_noise(noisy, timesteps, embeddings)
    assert torch.allclose(output, reference, atol=1e-5)
    with capture_attention(tiny_prior.unet, 8, "cross", resolutions={8, 4}) as grouped:
        tiny_prior.predict_noise(noisy, timesteps, embeddings)
    assert sorted(grouped) == [4, 8]
    for r in (8, 4):
        layers = [layer for layer in kept.layers if layer.resolution == r]
        per_layer = [kept.mean(layer.name) for layer in layers]
        assert all(m.shape == (2, 8, r * r, 77) for m in per_layer)  # (batch, heads, queries, text tokens)
        assert torch.allclose(per_layer[0].sum(-1), torch.ones(2, 8, r * r), atol=1e-5)
        head_and_layer_mean = torch.stack([m.mean(1) for m in per_layer]).mean(0)
        assert torch.allclose(grouped.mean(r), head_and_layer_mean, atol=1e-6)


def test_running_mean_over_calls_and_restore_on_error(tiny_prior, unet_inputs):
    noisy, timesteps, embeddings, _ = unet_inputs
    before = processors(tiny_prior.unet)
    singles = []
    for t in (100, 900):
        with capture_attention(tiny_prior.unet, 8, "self", resolutions={2}) as store:
            tiny_prior.predict_noise(noisy, torch.full((2,), t), embeddings)
        singles.append(store.mean(2))
    with (
        pytest.raises(RuntimeError, match="boom"),
        capture_attention(tiny_prior.unet, 8, "self", resolutions={2}) as store,
    ):
        for t in (100, 900):
            tiny_prior.predict_noise(noisy, torch.full((2,), t), embeddings)
        assert store.count(2) == 2 and torch.allclose(store.mean(2), (singles[0] + singles[1]) / 2, atol=1e-6)
        raise RuntimeError("boom")
    assert all(tiny_prior.unet.attn_processors[name] is proc for name, proc in before.items())


def test_sd2_style_head_counts_per_block():
    """SD 2.x sets a head count per block (attention_head_dim is a list): maps are reshaped with each layer's own."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        norm_num_groups=8,
    ).eval()
    unet.set_attn_processor(AttnProcessor2_0())
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor([10, 500]), torch.randn(2, 5, 16)
    with torch.no_grad():
        reference = unet(x, t, encoder_hidden_states=text).sample
        with capture_attention(unet, 8, "cross", keep_heads=True, group="layer") as store:
            output = unet(x, t, encoder_hidden_states=text).sample
    assert torch.allclose(output, reference, atol=1e-5)
    heads = {8: 2, 4: 4}  # block 0 (and its up block) at 8x8 has 2 heads; block 1 and the mid block at 4x4 have 4
    assert {layer.resolution for layer in store.layers} == {8, 4}
    for layer in store.layers:
        r = layer.resolution
        assert layer.heads == heads[r] and store.mean(layer.name).shape == (2, heads[r], r * r, 5)
