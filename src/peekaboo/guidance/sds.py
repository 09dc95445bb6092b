"""Score distillation sampling (DreamFusion), as in the original Peekaboo code.

For each composite: encode with gradient, draw t ~ U{min_step..max_step} and fresh noise, run ONE UNet call
on [noisy, noisy] with [uncond(''), prompt] embeddings, combine with classifier-free guidance, and inject
``grad = w(t) * (eps_cfg - noise)`` into the latents without back-propagating through the UNet. The
returned per-sample loss is the surrogate ``<grad.detach(), latents>`` whose gradient w.r.t. the latents is
exactly ``grad`` (the same as ``latents.backward(gradient=grad)``), so it sums with other losses.

Cost knobs (ablations, off by default, both approximations of the original): ``resolution`` encodes at
another size than the prior's (e.g. 256 instead of upsampling to 512: a 4x cheaper VAE and UNet, off the
model's training resolution), and ``composite=latent`` blends latents instead of encoding the composite
(``peekaboo.guidance.latent_composite``: no VAE in the loop at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from peekaboo.embedding_cache import EmbeddingCache
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites, Layers
from peekaboo.errors import ConfigError
from peekaboo.guidance.configs import Compositing, Weighting
from peekaboo.guidance.latent_composite import LatentCompositor, resize_images
from peekaboo.guidance.term import GuidanceTerm, TermOutput
from peekaboo.priors.base import DiffusionPrior
from peekaboo.schedules import Iterations, Schedule, unit_iterations

TOY_PRIOR = "peekaboo.priors.toy.ToyPrior"


@dataclass
class SDSOutput:
    loss: torch.Tensor  # (S,) surrogate losses
    grad_sq: torch.Tensor  # (S,) 0.5 * ||grad||^2 per sample, for logging
    timesteps: torch.Tensor  # (S,)


def timestep_bounds(min_frac: float, max_frac: float, num_train_timesteps: int) -> tuple[int, int]:
    """Fractions -> inclusive integer bounds, as the original: int(T * fraction)."""
    return int(num_train_timesteps * min_frac), int(num_train_timesteps * max_frac)


class ScoreDistillation(GuidanceTerm):
    """SDS on a frozen prior. Holds no learnable state; schedules are evaluated per iteration on the host."""

    needs_prior = True

    def __init__(
        self,
        prior: DiffusionPrior,
        guidance_scale: Any = 100.0,
        min_step: Any = 0.02,
        max_step: Any = 0.98,
        weighting: Weighting | str = Weighting.sds,
        grad_clip: float | None = None,
        sample_posterior: bool = True,
        resolution: int | None = None,
        composite: Compositing | str = Compositing.pixel,
        colour_lattice: int = 5,
        weight: float = 1.0,
        key: str = "loss.sds",
    ):
        self.prior = prior
        self.guidance_scale = Schedule.parse(guidance_scale, f"{key}.guidance_scale")
        self.min_step = Schedule.parse(min_step, f"{key}.min_step")
        self.max_step = Schedule.parse(max_step, f"{key}.max_step")
        self.weighting = Weighting(weighting.value if isinstance(weighting, Weighting) else weighting)
        self.grad_clip = grad_clip
        self.sample_posterior = sample_posterior
        self.resolution = resolution or prior.resolution
        self.composite = Compositing(getattr(composite, "value", composite))
        self.compositor = (
            LatentCompositor(prior, self.resolution, sample_posterior, colour_lattice)
            if self.composite is Compositing.latent
            else None
        )
        self.weight = weight
        self.embed = EmbeddingCache(prior.embed_prompts)

    def conditioning(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompts' embeddings and the empty prompt's (classifier-free guidance), cached per prompt."""
        return self.embed(prompts), self.embed([""])

    def score(
        self,
        composites: Composites,
        cond: torch.Tensor,
        shared: torch.Tensor | None,
        rng: UnitRandom,
        counts: Sequence[int],
        iteration: Iterations,
    ) -> TermOutput:
        out = self(composites.images, cond, shared, rng, counts, iteration, composites.layers)
        return TermOutput(out.loss, sums={"sds": out.grad_sq.detach()}, means={"t": out.timesteps.float()})

    @classmethod
    def check_config(cls, cfg: DictConfig, key: str) -> None:
        sds = OmegaConf.select(cfg, key)
        scale = Schedule.parse(sds.guidance_scale, f"{key}.guidance_scale")
        low = Schedule.parse(sds.min_step, f"{key}.min_step")
        high = Schedule.parse(sds.max_step, f"{key}.max_step")
        if any(v < 0 for v in scale.breakpoints):
            raise ConfigError(f"{key}.guidance_scale", "must be >= 0")
        for name, schedule in (("min_step", low), ("max_step", high)):
            if any(not 0 <= v <= 1 for v in schedule.breakpoints):
                raise ConfigError(
                    f"{key}.{name}",
                    f"is a fraction of the training timesteps: it must lie in [0, 1], got {list(schedule.breakpoints)}",
                )
        for it in sorted(set(low.iterations) | set(high.iterations)):
            if low(it) >= high(it):
                raise ConfigError(
                    f"{key}.min_step",
                    f"must be < {key}.max_step at every iteration; at iteration {it} "
                    f"min_step={low(it):g} >= max_step={high(it):g}",
                )
        if sds.grad_clip is not None and sds.grad_clip <= 0:
            raise ConfigError(f"{key}.grad_clip", f"must be > 0 or null, got {sds.grad_clip}")
        if sds.colour_lattice < 2:
            raise ConfigError(f"{key}.colour_lattice", f"must be >= 2 (points per RGB axis), got {sds.colour_lattice}")
        resolution = sds.resolution
        if resolution is not None and (resolution < 8 or resolution % 8):
            raise ConfigError(f"{key}.resolution", f"must be null or a positive multiple of 8, got {resolution}")
        if resolution is not None and cfg.model.get("_target_") == TOY_PRIOR and resolution != cfg.model.size:
            raise ConfigError(
                f"{key}.resolution",
                f"the toy world's prior only scores images of its own size ({cfg.model.size}); got {resolution}: "
                "leave it null",
            )

    def __call__(
        self,
        images: torch.Tensor,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        rng: UnitRandom,
        counts: Sequence[int],
        iteration: Iterations,
        layers: Layers | None = None,
    ) -> SDSOutput:
        """images (S, 3, H, W) in [0, 1]; cond (S, ...) prompt embeddings; uncond (1, ...); counts per unit.

        ``layers`` (the scene's foreground, alpha and colours) are required with ``composite=latent``."""
        if self.compositor is not None:
            if layers is None:
                raise ConfigError(
                    "loss.sds.composite",
                    "'latent' needs a scene that exposes its layers (foreground, alpha, background colours); "
                    "this task's scene only gives pixel composites: use loss.sds.composite=pixel",
                )
            latents = self.compositor(layers, rng, counts)
        else:
            latents = self.encode(images, rng, counts)
        return self.distil(latents, cond, uncond, rng, counts, iteration)

    def encode(self, images: torch.Tensor, rng: UnitRandom, counts: Sequence[int]) -> torch.Tensor:
        """Resize to the SDS resolution and encode with gradient; a posterior sample from the units' streams."""
        dist = self.prior.encode(resize_images(images, self.resolution))
        posterior_noise = None
        if self.sample_posterior and dist.std is not None:
            posterior_noise = rng.randn(counts, *dist.mean.shape[1:])
        return dist.sample(posterior_noise)

    def distil(
        self,
        latents: torch.Tensor,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        rng: UnitRandom,
        counts: Sequence[int],
        iteration: Iterations,
    ) -> SDSOutput:
        """Noise the latents, one batched cond/uncond UNet call, and the surrogate loss injecting the SDS gradient.

        ``iteration``: one for all units, or each unit's own: its timestep range and guidance scale follow it."""
        prior = self.prior
        bounds = [
            timestep_bounds(self.min_step(i), self.max_step(i), prior.num_train_timesteps)
            for i in unit_iterations(iteration, len(counts))
        ]
        timesteps = rng.randint(counts, [lo for lo, _ in bounds], [hi for _, hi in bounds])
        noise = rng.randn(counts, *latents.shape[1:])
        abar = prior.alphas_cumprod[timesteps].view(-1, *([1] * (latents.dim() - 1)))
        noisy = abar.sqrt() * latents.detach() + (1 - abar).sqrt() * noise

        scale = self.guidance_scale.at(iteration, latents, counts)
        with torch.no_grad():
            eps_cfg = prior.predict_noise_cfg(
                noisy, timesteps, uncond.expand(len(cond), *uncond.shape[1:]), cond, scale
            )
            w = 1 - abar if self.weighting is Weighting.sds else torch.ones_like(abar)
            grad = w * (eps_cfg - noise)
            if self.grad_clip is not None:
                grad = grad.clamp(-self.grad_clip, self.grad_clip)
        loss = self.weight * (grad * latents).flatten(1).sum(1)
        return SDSOutput(loss=loss, grad_sq=0.5 * grad.square().flatten(1).sum(1), timesteps=timesteps)
