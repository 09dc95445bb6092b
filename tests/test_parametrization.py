"""The four mask parametrizations: range, shape, gradients, per-unit independence and seeding."""

import functools

import pytest
import torch

from peekaboo.engine.random import UnitRandom
from peekaboo.params.configs import BilateralConfig
from peekaboo.params.fields import FourierField, RasterField
from peekaboo.params.parametrization import Parametrization

SMALL_FOURIER = functools.partial(FourierField, num_features=32, hidden=16)
VARIANTS = {
    "raster": dict(field=RasterField, bilateral=None),
    "raster_bilateral": dict(field=RasterField, bilateral=BilateralConfig()),
    "fourier": dict(field=SMALL_FOURIER, bilateral=None),
    "fourier_bilateral": dict(field=SMALL_FOURIER, bilateral=BilateralConfig(init_blur=False)),
}


def make(name: str, seeds: list[int], guides: torch.Tensor, channels: int = 1) -> Parametrization:
    rng = UnitRandom(seeds, "cpu")
    return Parametrization(
        rng.init,
        channels,
        guides.shape[-2],
        guides.shape[-1],
        guides=guides,
        guide_index=list(range(len(seeds))),
        **VARIANTS[name],
    )


@pytest.mark.parametrize("name", list(VARIANTS))
def test_range_shape_and_gradients(name):
    guides = torch.rand(3, 3, 24, 20)
    param = make(name, [0, 1, 2], guides)
    alpha = param()
    assert alpha.shape == (3, 1, 24, 20)
    assert torch.all(alpha > 0) and torch.all(alpha < 1)
    (alpha * torch.randn_like(alpha)).sum().backward()
    for unit in range(3):
        grads = [p.grad for p in param.unit_parameters(unit)]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("name", list(VARIANTS))
def test_units_are_independent_of_their_batch(name):
    """A unit's mask and gradients do not depend on the other units it is batched with."""
    guides = torch.rand(3, 3, 16, 16)
    batched = make(name, [5, 6, 7], guides)
    alone = make(name, [6], guides[1:2])
    torch.testing.assert_close(batched()[1:2], alone())
    weight = torch.randn(1, 1, 16, 16)
    (batched()[1:2] * weight).sum().backward()
    (alone() * weight).sum().backward()
    for a, b in zip(batched.unit_parameters(1), alone.unit_parameters(0), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_same_seed_same_mask_different_seed_different_mask():
    guides = torch.rand(1, 3, 16, 16)
    for name in VARIANTS:
        assert torch.equal(make(name, [3], guides)(), make(name, [3], guides)())
        assert not torch.allclose(make(name, [3], guides)(), make(name, [4], guides)())


def test_initial_blur_smooths_raster_logits_along_the_guide():
    """init_blur=true (the paper's App. C wording) blurs P once; false (the default, the authors' code) keeps the
    raw randn P and filters only in the forward."""
    guide = torch.zeros(1, 3, 16, 16)
    guide[..., 8:] = 1.0
    rng = UnitRandom([0], "cpu")
    blurred = Parametrization(rng.init, 1, 16, 16, RasterField, BilateralConfig(init_blur=True), guides=guide)
    raw = blurred.field()[0, 0]
    # within each flat half the initial values are nearly constant (blurred 40x), across the edge they differ
    assert raw[:, :8].std() < 0.2 and raw[:, 8:].std() < 0.2
    unblurred = make("raster", [0], guide).field()[0, 0]
    assert unblurred[:, :8].std() > 0.8
    default = make("raster_bilateral", [0], guide)  # BilateralConfig() = init_blur false
    assert torch.equal(default.field(), make("raster", [0], guide).field())  # P is the raw randn field
    torch.testing.assert_close(default(), torch.sigmoid(default.bilateral(default.field())))
    torch.testing.assert_close(blurred(), torch.sigmoid(blurred.bilateral(blurred.bilateral(default.field()))))
