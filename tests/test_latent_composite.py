"""Latent-space compositing (``loss.sds.composite=latent``): exact on the toy world, no VAE in the loop."""

import pytest
import torch

from conftest import compose, module_and_items
from peekaboo.config.validate import validate
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Layers
from peekaboo.errors import ConfigError
from peekaboo.guidance.latent_composite import ColourLatents, pool_to_grid
from peekaboo.guidance.sds import ScoreDistillation
from peekaboo.priors.toy import ToyPrior


def layers_and_composites(n_units: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    foreground = torch.rand(n_units, 3, size, size, generator=g)
    alpha = torch.rand(n_units, 1, size, size, generator=g).requires_grad_(True)
    background = torch.rand(n_units, 3, generator=g)
    images = alpha * foreground + (1 - alpha) * background[:, :, None, None]
    return Layers(foreground, alpha, background), images


def test_toy_latent_compositing_equals_pixel_compositing():
    """Identity "VAE", working resolution = model resolution: same latents, SDS gradients and masks."""
    prior = ToyPrior(size=16)
    layers, images = layers_and_composites(2, 16)
    cond, uncond = prior.embed_prompts(["red circle", "blue square"]), prior.embed_prompts([""])
    grads, losses = {}, {}
    for mode in ("pixel", "latent"):
        sds = ScoreDistillation(prior, composite=mode)
        out = sds(images, cond, uncond, UnitRandom([1, 2], "cpu"), [1, 1], 0, layers)
        losses[mode] = out.loss.detach()
        grads[mode] = torch.autograd.grad(out.loss.sum(), layers.alpha, retain_graph=True)[0]
    torch.testing.assert_close(losses["latent"], losses["pixel"], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(grads["latent"], grads["pixel"], rtol=1e-4, atol=1e-4)
    assert grads["latent"].abs().sum() > 0

    # through the engine: the same masks after a few steps
    alphas = {}
    for mode in ("pixel", "latent"):
        module, items = module_and_items("toy", "raster_bilateral", 2, f"loss.sds.composite={mode}")
        alphas[mode] = module.optimize_batch(items)[1].outputs["alpha"]
    torch.testing.assert_close(alphas["latent"], alphas["pixel"], rtol=0, atol=1e-4)


def test_latent_compositing_never_differentiates_nor_calls_the_vae_in_the_loop(peekaboo_cache):
    module, items = module_and_items(
        "tiny_sd", "raster_bilateral", 2, "loss.sds.composite=latent", "schedule.iterations=3"
    )
    encoder = module.prior.vae.encoder
    calls = []
    encoder.register_forward_hook(lambda m, args, out: calls.append((torch.is_grad_enabled(), out.requires_grad)))
    per_iteration = []
    _, result = module.optimize_batch(items, on_iteration=lambda i: per_iteration.append(len(calls)))
    # iteration 0: the two foregrounds once, and the 5^3 colour lattice in chunks of 8; nothing afterwards
    assert per_iteration == [1 + 16] * 3
    assert all(not grad_enabled and not requires_grad for grad_enabled, requires_grad in calls)
    assert result.history["sds"].shape == (3, 2)

    # gradients reach alpha (and only alpha) through the pooled blend
    sds = module._state["objective"].terms["sds"]
    layers, images = layers_and_composites(2, 32)
    cond = module.prior.embed_prompts(["a red circle", "a blue square"])
    out = sds(images, cond, module.prior.embed_prompts([""]), UnitRandom([1, 2], "cpu"), [1, 1], 0, layers)
    grad = torch.autograd.grad(out.loss.sum(), layers.alpha)[0]
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()


def test_colour_lookup_is_exact_on_the_lattice_and_for_an_affine_encoder(tiny_prior):
    table = ColourLatents(tiny_prior, 64, lattice=3)
    colours = torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.0, 0.0]])
    solid = colours[:, :, None, None].expand(-1, -1, 64, 64).contiguous()
    torch.testing.assert_close(table(colours), tiny_prior.encode(solid).mean, rtol=1e-4, atol=1e-5)
    toy = ToyPrior(size=8)
    anywhere = torch.rand(5, 3)
    expected = 2 * anywhere[:, :, None, None].expand(-1, -1, 8, 8) - 1
    torch.testing.assert_close(ColourLatents(toy, 8, lattice=2)(anywhere), expected)


def test_alpha_is_area_averaged_onto_the_latent_grid():
    alpha = torch.arange(16.0).view(1, 1, 4, 4)
    expected = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])
    torch.testing.assert_close(pool_to_grid(alpha, (2, 2)), expected)
    assert pool_to_grid(alpha, (4, 4)) is alpha


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["model=tiny_sd", "loss.sds.colour_lattice=1"], "loss.sds.colour_lattice"),
        (["model=tiny_sd", "loss.sds.resolution=60"], "loss.sds.resolution"),
        (["model=toy", "loss.sds.resolution=16"], "loss.sds.resolution"),
        (["experiment=rgba", "loss.sds.composite=latent"], "loss.sds.composite"),  # no fixed image to encode
        (
            ["experiment=fig_fg_bg_grid", "model=toy", "data=fg_bg_grid_toy", "loss.sds.composite=latent"],
            "loss.sds.composite",
        ),
    ],
)
def test_bad_cost_knobs_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate(compose(overrides))
    assert err.value.key == key
