"""The toy prior is the exact Bayes denoiser of its mixture: checked on samples, a dense Gaussian and CFG."""

from __future__ import annotations

import math

import pytest
import torch

from peekaboo.errors import DataError
from peekaboo.priors.base import DiffusionPrior
from peekaboo.priors.toy import ToyPrior
from peekaboo.toy.vocabulary import CLASSES, COLOURS, SHAPES, valid_prompts

RED_CIRCLE = next(c.index for c in CLASSES if c.prompt == "red circle")


@pytest.fixture(scope="module")
def prior() -> ToyPrior:
    return ToyPrior()


def _noisy(prior: ToyPrior, x0: torch.Tensor, t: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    abar = prior.alphas_cumprod[t].to(x0.dtype)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise, torch.full((len(x0),), t, dtype=torch.long)


def test_interface_attributes(prior: ToyPrior) -> None:
    assert prior.resolution == 32 and prior.latent_shape == (3, 32, 32)
    assert prior.dtype == torch.float32 and prior.num_train_timesteps == 1000
    assert prior.templates.shape == (len(SHAPES) * prior.templates_per_class, 32 * 32)
    assert prior.templates_per_class == 366
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    latents = prior.encode(images)
    assert latents.std is None and torch.equal(latents.mean, 2 * images - 1)
    latents.mean.sum().backward()
    assert torch.all(images.grad == 2)


@pytest.mark.parametrize("class_index", [RED_CIRCLE, 6, 11])
def test_denoiser_recovers_own_samples(prior: ToyPrior, class_index: int) -> None:
    gen = torch.Generator().manual_seed(class_index)
    x0, picks = prior.sample(class_index, 16, gen)
    noisy, t = _noisy(prior, x0, 30, gen)
    estimate = prior.predict_x0(noisy, t, prior.embed_prompts([CLASSES[class_index].prompt] * 16))
    # Only the pixel noise (sn = 0.05) is unrecoverable: its posterior std is ~0.048 at t = 30.
    assert (estimate - x0).pow(2).mean().sqrt() < 0.055
    naive = noisy / prior.alphas_cumprod[30].sqrt()
    assert (estimate - x0).abs().mean() < 0.35 * (naive - x0).abs().mean()
    components = torch.softmax(prior.component_log_evidence(noisy, t)[:, class_index], dim=1)
    assert components[torch.arange(16), picks].min() > 0.99
    classes = torch.softmax(prior.class_log_evidence(noisy, t), dim=1)
    assert classes[:, class_index].min() > 0.99


def test_predict_noise_is_consistent_with_x0(prior: ToyPrior) -> None:
    gen = torch.Generator().manual_seed(1)
    x0, _ = prior.sample(3, 4, gen)
    noisy, t = _noisy(prior, x0, 400, gen)
    emb = prior.embed_prompts(["square"] * 4)
    abar = prior.alphas_cumprod[400]
    eps = prior.predict_noise(noisy, t, emb)
    assert eps.dtype == torch.float32 and eps.shape == noisy.shape
    expected = (noisy - abar.sqrt() * prior.predict_x0(noisy, t, emb)) / (1 - abar).sqrt()
    torch.testing.assert_close(eps, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("t", [600, 900])
def test_unconditional_is_evidence_weighted_mixture(prior: ToyPrior, t: int) -> None:
    gen = torch.Generator().manual_seed(t)
    x0 = torch.cat([prior.sample(c, 1, gen)[0] for c in range(len(CLASSES))])
    noisy, ts = _noisy(prior, x0, t, gen)
    n = len(x0)
    per_class = torch.stack(
        [prior.predict_x0(noisy, ts, prior.embed_prompts([cls.prompt] * n)) for cls in CLASSES], dim=1
    )
    class_weights = torch.softmax(prior.class_log_evidence(noisy, ts), dim=1)
    assert class_weights.max(1).values.min() < 0.9  # the mixture is non-trivial at this t
    expected = (class_weights[:, :, None, None, None] * per_class).sum(1).float()
    uncond = prior.predict_x0(noisy, ts, prior.embed_prompts([""] * n))
    torch.testing.assert_close(uncond, expected, rtol=0, atol=1e-5)
    # A bare shape is the evidence-weighted mixture of that shape's colours.
    circles = slice(0, len(COLOURS))
    w = torch.softmax(prior.class_log_evidence(noisy, ts)[:, circles], dim=1)
    bare = prior.predict_x0(noisy, ts, prior.embed_prompts(["circle"] * n))
    expected = (w[:, :, None, None, None] * per_class[:, circles]).sum(1).float()
    torch.testing.assert_close(bare, expected, rtol=0, atol=1e-5)


def _dense_reference(prior: ToyPrior, x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class and template, dense HW x HW: log N(x_t; a mu0, a^2 Sigma0 + s^2 I), E[x0|x_t,k]."""
    abar = prior.alphas_cumprod[t].double()
    a, s2 = abar.sqrt(), 1 - abar
    hw, kc = prior.resolution**2, prior.templates_per_class
    x = x_t.double().reshape(3, hw)
    eye = torch.eye(hw, dtype=torch.float64)
    log_ev = torch.zeros(len(CLASSES), kc, dtype=torch.float64)
    means = torch.zeros(len(CLASSES), kc, 3, hw, dtype=torch.float64)
    for cls in CLASSES:
        shape, colour = divmod(cls.index, len(COLOURS))
        for k in range(kc):
            m = prior.templates[shape * kc + k].double()
            sigma0 = prior.sf**2 * torch.outer(m, m) + prior.sg**2 * torch.outer(1 - m, 1 - m) + prior.sn**2 * eye
            cov = a**2 * sigma0 + s2 * eye
            for ch in range(3):
                mu0 = prior.colour_means[colour, ch].double() * m
                dist = torch.distributions.MultivariateNormal(a * mu0, covariance_matrix=cov)
                log_ev[cls.index, k] += dist.log_prob(x[ch])
                means[cls.index, k, ch] = mu0 + a * sigma0 @ torch.linalg.solve(cov, x[ch] - a * mu0)
    return log_ev, means


@pytest.mark.parametrize("t", [25, 500])
def test_woodbury_matches_dense_gaussian(t: int) -> None:
    tiny = ToyPrior(size=8, template_sizes=(3.0, 5.0), template_stride=2.0, dtype=torch.float64)
    assert tiny.templates_per_class == 2 * 2 + 1  # size 3 at a 2x2 grid, size 5 centred
    gen = torch.Generator().manual_seed(t)
    x0, _ = tiny.sample(RED_CIRCLE, 1, gen)
    x_t, ts = _noisy(tiny, x0, t, gen)
    log_ev, means = _dense_reference(tiny, x_t[0], t)
    torch.testing.assert_close(tiny.component_log_evidence(x_t, ts)[0], log_ev, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(
        tiny.class_log_evidence(x_t, ts)[0], torch.logsumexp(log_ev, 1) - math.log(tiny.templates_per_class)
    )
    for prompts in (["red circle"], ["triangle"], [""]):
        emb = tiny.embed_prompts(prompts)[0]
        post = torch.softmax((log_ev + emb.log()[:, None]).flatten(), 0).view_as(log_ev)
        expected = (post[:, :, None, None] * means).sum((0, 1)).view(1, 3, 8, 8)
        torch.testing.assert_close(tiny.predict_x0(x_t, ts, emb[None]), expected, rtol=1e-10, atol=1e-10)
    # The float32 prior agrees with the float64 reference to float32 accuracy.
    tiny32 = ToyPrior(size=8, template_sizes=(3.0, 5.0), template_stride=2.0)
    torch.testing.assert_close(tiny32.component_log_evidence(x_t.float(), ts)[0].double(), log_ev, rtol=0, atol=2e-3)
    emb = tiny32.embed_prompts(["red circle"])
    torch.testing.assert_close(
        tiny32.predict_x0(x_t.float(), ts, emb).double(),
        tiny.predict_x0(x_t, ts, emb.double()),
        rtol=0,
        atol=1e-5,
    )


def test_guidance_points_towards_the_prompt(prior: ToyPrior) -> None:
    """At high noise the unconditional branch still hedges over classes; guidance pulls towards the truth."""
    gen = torch.Generator().manual_seed(7)
    x0, picks = prior.sample(RED_CIRCLE, 8, gen)
    noisy, t = _noisy(prior, x0, 800, gen)
    eps_cond = prior.predict_noise(noisy, t, prior.embed_prompts(["red circle"] * 8))
    eps_uncond = prior.predict_noise(noisy, t, prior.embed_prompts([""] * 8))
    assert (eps_cond - eps_uncond).abs().mean() > 3e-3
    x0_uncond = prior.predict_x0(noisy, t, prior.embed_prompts([""] * 8))
    circle = SHAPES.index("circle") * prior.templates_per_class
    region = (prior.templates[circle + picks] >= 0.5).view(8, 1, 32, 32).expand(-1, 3, -1, -1)
    guidance = (eps_uncond - eps_cond)[region]
    residual = (x0 - x0_uncond)[region]
    assert torch.corrcoef(torch.stack([guidance, residual]))[0, 1] > 0.4


def test_prompt_embeddings(prior: ToyPrior) -> None:
    emb = prior.embed_prompts(["  A Red  CIRCLE ", "circle", "", "the blue triangle"])
    assert emb.shape == (4, len(CLASSES)) and emb.dtype == torch.float32
    assert emb[0, RED_CIRCLE] == 1 and emb[0].sum() == 1
    torch.testing.assert_close(emb[1, : len(COLOURS)], torch.full((len(COLOURS),), 1 / len(COLOURS)))
    assert emb[1, len(COLOURS) :].sum() == 0
    torch.testing.assert_close(emb[2], torch.full((len(CLASSES),), 1 / len(CLASSES)))
    assert emb[3].argmax() == next(c.index for c in CLASSES if c.prompt == "blue triangle")


def test_unknown_prompt_lists_vocabulary(prior: ToyPrior) -> None:
    with pytest.raises(DataError) as info:
        prior.embed_prompts(["red circle", "purple hexagon"])
    message = str(info.value)
    assert "'purple hexagon'" in message
    assert all(prompt in message for prompt in valid_prompts())


def test_guided_prediction_equals_mixing_two_separate_predictions(prior: ToyPrior) -> None:
    """``predict_noise_cfg`` shares the conditioning-free work and mixes before the template product: same numbers
    as the generic two-branch prediction (``DiffusionPrior.predict_noise_cfg``)."""
    gen = torch.Generator().manual_seed(3)
    x0, _ = prior.sample(RED_CIRCLE, 4, gen)
    noisy, t = _noisy(prior, x0, 500, gen)
    uncond, cond = prior.embed_prompts([""] * 4), prior.embed_prompts(["red circle", "circle", "blue square", ""])
    eps_uncond, eps_cond = prior.predict_noise(noisy, t, uncond), prior.predict_noise(noisy, t, cond)
    assert (eps_cond - eps_uncond).abs().amax() > 1e-3
    for scale in (0.0, 1.0, 7.5, 100.0):
        guided = prior.predict_noise_cfg(noisy, t, uncond, cond, scale)
        generic = DiffusionPrior.predict_noise_cfg(prior, noisy, t, uncond, cond, scale)
        tolerance = {"rtol": 1e-5, "atol": 1e-5 * (1 + scale)}  # float32 rounding, amplified by the scale
        torch.testing.assert_close(generic, eps_uncond + scale * (eps_cond - eps_uncond), **tolerance)
        torch.testing.assert_close(guided, generic, **tolerance)
