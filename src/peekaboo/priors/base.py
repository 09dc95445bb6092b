"""The one small protocol every diffusion prior implements.

Guidance (SDS), baselines and the engine talk to Stable Diffusion, the tiny random pipeline and the
analytic toy world only through this interface, so a new prior is one class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from peekaboo.config.validate import positive


@dataclass
class LatentDistribution:
    """A diagonal Gaussian over latents; ``std`` is None for a deterministic encoder (the toy world)."""

    mean: torch.Tensor
    std: torch.Tensor | None = None

    def sample(self, noise: torch.Tensor | None) -> torch.Tensor:
        """``mean + std * noise``; the caller draws ``noise`` so that randomness follows per-item seeds."""
        if self.std is None or noise is None:
            return self.mean
        return self.mean + self.std * noise


class DiffusionPrior(ABC):
    """A frozen text-conditional epsilon-prediction diffusion model.

    Attributes every implementation sets:
      resolution:     side length (pixels) of the images ``encode`` expects.
      latent_shape:   (C, h, w) of one latent for an image of ``resolution``.
      device, dtype:  where the frozen networks live and the dtype they compute in; inputs and
                      outputs of the methods below are float32 unless stated otherwise.
      alphas_cumprod: float32 tensor (num_train_timesteps,) on ``device``.
    """

    resolution: int
    latent_shape: tuple[int, int, int]
    device: torch.device
    dtype: torch.dtype
    alphas_cumprod: torch.Tensor

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        """The image size the prior works at (``model.resolution`` or, for the toy world, ``model.size``)."""
        for key in ("model.resolution", "model.size"):
            positive(cfg, key)

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    @abstractmethod
    def encode(self, images: torch.Tensor) -> LatentDistribution:
        """Images (N, 3, resolution, resolution) in [0, 1] -> latent distribution, differentiable w.r.t. images."""

    @abstractmethod
    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> conditioning embeddings (len(prompts), ...) on ``device``. No gradient.

        The empty prompt '' is the unconditional embedding used by classifier-free guidance.
        """

    @abstractmethod
    def predict_noise(self, noisy: torch.Tensor, timesteps: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """epsilon-prediction for a batch: noisy (N, *latent_shape), timesteps (N,) long, embeddings (N, ...).

        Called under ``torch.no_grad``; returns float32 (N, *latent_shape).
        """

    def predict_noise_cfg(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        uncond: torch.Tensor,
        cond: torch.Tensor,
        guidance_scale: float | torch.Tensor,
    ) -> torch.Tensor:
        """Classifier-free guided epsilon ``eps_u + guidance_scale * (eps_c - eps_u)`` of the same noisy latents.

        ``guidance_scale``: a number, or one per sample (N,) when the units of a batch are at different iterations
        of a scheduled scale (continuous batching).

        By default ONE batched call on ``[noisy, noisy]`` with ``[uncond, cond]`` (as the original). Priors
        whose work mostly does not depend on the conditioning (the toy world) override it to do that work once.
        """
        eps = self.predict_noise(
            torch.cat([noisy, noisy]), torch.cat([timesteps, timesteps]), torch.cat([uncond, cond])
        )
        eps_uncond, eps_cond = eps.chunk(2)
        return eps_uncond + per_sample_scale(guidance_scale, eps_cond) * (eps_cond - eps_uncond)

    def to(self, device: torch.device | str) -> DiffusionPrior:
        """Move the frozen networks; priors without networks only move their tensors."""
        self.device = torch.device(device)
        self.alphas_cumprod = self.alphas_cumprod.to(self.device)
        return self


def per_sample_scale(scale: float | torch.Tensor, like: torch.Tensor, sample_dim: int = 0) -> float | torch.Tensor:
    """A number as is; a per-sample (N,) tensor shaped (and typed) to broadcast over ``like``, whose samples lie
    along ``sample_dim``."""
    if not isinstance(scale, torch.Tensor):
        return scale
    shape = [1] * like.dim()
    shape[sample_dim] = -1
    return scale.to(like.dtype).view(shape)
