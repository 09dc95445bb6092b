"""Score distillation on tiny_sd: the injected gradient, classifier-free guidance and per-unit draws."""

import torch

from peekaboo.engine.random import UnitRandom
from peekaboo.guidance.sds import ScoreDistillation, timestep_bounds


def assert_relative_close(actual, expected, tolerance=1e-4):
    """Batched and unbatched UNet calls round differently; guidance 100 amplifies it: compare norms."""
    error = torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected)
    assert error < tolerance, f"relative error {error:.2e}"


def replay(prior, images, seeds, counts, guidance_scale, min_step=0.02, max_step=0.98):
    """The reference computation, step by step, with the same per-unit draws as ScoreDistillation."""
    rng = UnitRandom(seeds, "cpu")
    x = torch.nn.functional.interpolate(images, size=(prior.resolution,) * 2, mode="bilinear", align_corners=False)
    dist = prior.encode(x)
    latents = dist.mean + dist.std * rng.randn(counts, *dist.mean.shape[1:])
    lo, hi = timestep_bounds(min_step, max_step, 1000)
    t = rng.randint(counts, lo, hi)
    noise = rng.randn(counts, *latents.shape[1:])
    abar = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = abar.sqrt() * latents.detach() + (1 - abar).sqrt() * noise
    prompts = ["a dog", "a red cat"]
    with torch.no_grad():
        # separate (unbatched) conditional and unconditional calls
        eps_c = prior.predict_noise(noisy, t, prior.embed_prompts(prompts))
        eps_u = prior.predict_noise(noisy, t, prior.embed_prompts(["", ""]))
    return latents, t, noise, eps_c, eps_u, (1 - abar)


def run_sds(prior, images, seeds, counts, scale):
    sds = ScoreDistillation(prior, guidance_scale=scale)
    rng = UnitRandom(seeds, "cpu")
    cond = prior.embed_prompts(["a dog", "a red cat"])
    return sds(images, cond, prior.embed_prompts([""]), rng, counts, iteration=0)


def test_injected_gradient_equals_w_times_cfg_residual(tiny_prior):
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = run_sds(tiny_prior, images, [11, 12], [1, 1], scale=100.0)
    grad_images = torch.autograd.grad(out.loss.sum(), images)[0]

    ref_images = images.detach().clone().requires_grad_(True)
    latents, t, noise, eps_c, eps_u, w = replay(tiny_prior, ref_images, [11, 12], [1, 1], 100.0)
    torch.testing.assert_close(out.timesteps, t)
    expected_grad = w * (eps_u + 100.0 * (eps_c - eps_u) - noise)
    # the surrogate's gradient w.r.t. the latents is exactly the SDS gradient ...
    latents.backward(gradient=expected_grad)
    assert_relative_close(grad_images, ref_images.grad)
    assert_relative_close(out.grad_sq, 0.5 * expected_grad.square().flatten(1).sum(1))
    assert grad_images.abs().sum() > 0


def test_guidance_scale_one_is_the_conditional_prediction(tiny_prior):
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = run_sds(tiny_prior, images, [3, 4], [1, 1], scale=1.0)
    grad_images = torch.autograd.grad(out.loss.sum(), images)[0]
    ref_images = images.detach().clone().requires_grad_(True)
    latents, _, noise, eps_c, _, w = replay(tiny_prior, ref_images, [3, 4], [1, 1], 1.0)
    latents.backward(gradient=w * (eps_c - noise))
    assert_relative_close(grad_images, ref_images.grad, 1e-5)


def test_unit_draws_do_not_depend_on_batching(tiny_prior):
    """Unit 1's timestep, noise and gradient are the same alone or batched after unit 0."""
    images = torch.rand(2, 3, 32, 32)
    batched = run_sds(tiny_prior, images, [21, 22], [1, 1], 100.0)
    sds = ScoreDistillation(tiny_prior, guidance_scale=100.0)
    alone = sds(
        images[1:],
        tiny_prior.embed_prompts(["a red cat"]),
        tiny_prior.embed_prompts([""]),
        UnitRandom([22], "cpu"),
        [1],
        iteration=0,
    )
    torch.testing.assert_close(batched.timesteps[1:], alone.timesteps)
    assert_relative_close(batched.grad_sq[1:], alone.grad_sq)


def test_timestep_bounds_follow_the_original():
    assert timestep_bounds(0.02, 0.98, 1000) == (20, 980)
    assert timestep_bounds(0.2, 0.4, 1000) == (200, 400)
    rng = UnitRandom([0], "cpu")
    draws = rng.randint([5000], 20, 980)
    assert int(draws.min()) == 20 and int(draws.max()) == 980


def test_half_precision_prior_gives_fp32_gradients_close_to_fp32(peekaboo_cache):
    """bf16 frozen networks, fp32 optimised parameters: the gradient stays fp32 and close to the fp32 one."""
    from peekaboo.priors.tiny_sd import build_tiny_sd

    images = torch.rand(2, 3, 32, 32)
    grads = {}
    for dtype in ("fp32", "bf16"):
        prior = build_tiny_sd(seed=0, cache_dir=str(peekaboo_cache), dtype=dtype, channels_last=dtype == "bf16")
        x = images.clone().requires_grad_(True)
        out = run_sds(prior, x, [5, 6], [1, 1], scale=7.5)
        grads[dtype] = torch.autograd.grad(out.loss.sum(), x)[0]
        assert next(prior.unet.parameters()).dtype == (torch.float32 if dtype == "fp32" else torch.bfloat16)
    assert grads["bf16"].dtype == torch.float32
    assert_relative_close(grads["bf16"], grads["fp32"], tolerance=0.1)
