"""Batching is exact: a unit's result does not depend on the units it shares UNet/VAE calls with.

Through the real engine (``PeekabooModule.optimize_batch``) for the four parametrizations on the toy world
and on tiny_sd; and the original's loop structure (``optimize_one_at_a_time``) equals the engine at batch 1,
so the benchmark's baseline is a tested reference.
"""

import pytest
import torch

from conftest import module_and_items
from peekaboo.engine.random import UnitRandom
from peekaboo.evaluation.metrics import score_alpha

PARAMS = ["raster", "raster_bilateral", "fourier", "fourier_bilateral"]


def initial_alpha(module, items):
    units = module._state["task"].units(items, module.cfg.seed)
    return module.scene(items, units, UnitRandom([u.seed for u in units], "cpu"), 1).outputs()["alpha"]


@pytest.mark.parametrize("prior", ["toy", "tiny_sd"])
@pytest.mark.parametrize("param", PARAMS)
def test_batched_units_equal_unbatched_units(prior, param, peekaboo_cache):
    module, items = module_and_items(prior, param, 2)
    _, batched = module.optimize_batch(items)
    alone = torch.cat([module.optimize_batch([item])[1].outputs["alpha"] for item in items])
    torch.testing.assert_close(batched.outputs["alpha"], alone, rtol=0, atol=1e-4)
    assert batched.history["sds"].shape == (2, 2)  # (iterations, units)
    # the masks moved far more than the tolerance, so the comparison is not vacuous
    assert (alone - initial_alpha(module, items)).abs().amax() > 0.01
    # the reference loop (one unit at a time, one SDS call per sample) is the engine at batch 1
    _, reference = module.optimize_one_at_a_time(items)
    torch.testing.assert_close(reference["alpha"], alone, rtol=0, atol=1e-6)
    # the same seeds give the same masks, hence the same IoU (toy world: ground truth exists)
    for n, item in enumerate(items):
        ious = [score_alpha(a[n, 0].numpy(), item.mask)["iou"][0] for a in (batched.outputs["alpha"], alone)]
        assert abs(ious[0] - ious[1]) <= 0.01


def test_batching_is_exact_with_several_backgrounds_per_unit():
    """n_backgrounds samples per unit share one call; each unit still draws its own colours and timesteps."""
    module, items = module_and_items("toy", "raster_bilateral", 3, "loss.n_backgrounds=2")
    _, batched = module.optimize_batch(items)
    alone = torch.cat([module.optimize_batch([item])[1].outputs["alpha"] for item in items])
    torch.testing.assert_close(batched.outputs["alpha"], alone, rtol=0, atol=1e-4)
    # one call per sample (the reference) draws in another order: same distribution, not the same numbers
    _, reference = module.optimize_one_at_a_time(items)
    assert not torch.allclose(reference["alpha"], alone, atol=1e-4)


def test_prompt_embeddings_are_computed_once_per_prompt():
    module, items = module_and_items("toy", "raster", 3, "data.prompt=red circle")
    calls = []
    cache = module._state["objective"].terms["sds"].embed  # the objective's cache in front of prior.embed_prompts
    encode = cache.encode
    cache.encode = lambda prompts: calls.append(list(prompts)) or encode(prompts)
    module.optimize_batch(items[:2])
    module.optimize_batch(items[2:])
    assert calls == [["red circle"], [""]]


@pytest.mark.slow
def test_compiled_unet_gives_the_eager_result(peekaboo_cache):
    """``model.compile=true`` (torch.compile of the UNet, minutes to compile on a CPU) changes speed only."""
    alphas = {}
    for compiled in (False, True):
        module, items = module_and_items("tiny_sd", "raster_bilateral", 2, f"model.compile={str(compiled).lower()}")
        alphas[compiled] = module.optimize_batch(items)[1].outputs["alpha"]
    torch.testing.assert_close(alphas[True], alphas[False], rtol=0, atol=1e-4)
