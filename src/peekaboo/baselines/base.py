"""What the attention baselines share: a Stable Diffusion prior, clean latents, noising, prompt tokens, rendering.

Every baseline is a ``PriorModule`` (``cls(cfg, record)``, ``predict_step(batch, idx) -> list[ItemArtifacts]``), so
the writer, resumption, metrics and loggers work unchanged. Their settings live under ``cfg.method``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from peekaboo.config.build import build
from peekaboo.data.base import Item
from peekaboo.errors import ConfigError, DataError
from peekaboo.lightning.prior_module import PriorModule
from peekaboo.priors.base import LatentDistribution
from peekaboo.priors.stable_diffusion import StableDiffusionPrior
from peekaboo.tasks.base import ItemArtifacts, Unit, units_of
from peekaboo.tasks.segment import UnitMaps

STABLE_DIFFUSION_TARGETS = (
    "peekaboo.priors.stable_diffusion.StableDiffusionPrior",
    "peekaboo.priors.tiny_sd.build_tiny_sd",
)


def _requires_stable_diffusion(cfg: DictConfig) -> ConfigError:
    return ConfigError(
        "model",
        f"method={cfg.method.name} reads the attention maps of a Stable Diffusion UNet, which "
        f"model={cfg.model.name} does not have; use model=sd14, sd15, sd21_base or tiny_sd",
    )


def ddim_timesteps(ddim_steps: int, count: int, offset: int = 1, train_steps: int = 1000) -> list[int]:
    """The ``count`` smallest timesteps of the DDIM grid with ``ddim_steps`` steps, largest first.

    SD's scheduler config (``steps_offset=1``, "leading" spacing): 50 steps -> 981, 961, ..., 1; count=40 ->
    781, 761, ..., 1.
    """
    stride = train_steps // ddim_steps
    return [k * stride + offset for k in reversed(range(count))]


def prompt_tokens(tokenizer, template: str, prompt: str) -> tuple[str, list[int]]:
    """The text ``template`` with ``prompt`` in place of ``{}``, and the positions of the prompt's tokens in
    that text's tokenisation (position 0 is the start token). Multi-token prompts give several positions."""
    text = template.replace("{}", prompt)
    full = tokenizer(text).input_ids
    before = tokenizer(template.split("{}")[0], add_special_tokens=False).input_ids
    own = tokenizer(prompt, add_special_tokens=False).input_ids
    positions = list(range(1 + len(before), 1 + len(before) + len(own)))
    if not own or full[positions[0] : positions[-1] + 1] != own:
        raise DataError(
            f"prompt {prompt!r}: its tokens do not appear as such in {text!r}; put '{{}}' between words in "
            "method.template"
        )
    if positions[-1] >= tokenizer.model_max_length - 1:
        raise DataError(
            f"prompt {prompt!r}: {text!r} is {len(full)} tokens long; the text encoder reads "
            f"{tokenizer.model_max_length} (start and end tokens included): shorten the prompt or the template"
        )
    return text, positions


class AttentionBaseline(PriorModule):
    """A training-free method that reads the attention maps of a frozen Stable Diffusion UNet."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        if cfg.model.get("_target_") not in STABLE_DIFFUSION_TARGETS:
            raise _requires_stable_diffusion(cfg)

    @staticmethod
    def build(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
        state = PriorModule.build(cfg, device)
        if not isinstance(state["prior"], StableDiffusionPrior):
            raise _requires_stable_diffusion(cfg)
        return state

    @property
    def latent_size(self) -> int:
        return self.prior.latent_shape[-1]

    def clean_latents(self, items: list[Item]) -> torch.Tensor:
        """VAE posterior means (x the scaling factor, 0.18215 for SD) of the items' images at the prior's size."""
        return self.encode_items(items).mean

    def encode_items(self, items: list[Item]) -> LatentDistribution:
        """The VAE posterior (x the scaling factor) of the items' images, resized to the prior's size."""
        images = torch.stack([item.image for item in items]).to(self.prior.device)
        size = self.prior.resolution
        if images.shape[-1] != size or images.shape[-2] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.prior.encode(images.clamp(0, 1))

    def noised(self, latents: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The forward process: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, per sample."""
        abar = self.prior.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
        return abar.sqrt() * latents + (1 - abar).sqrt() * noise


class PromptedBaseline(AttentionBaseline):
    """A text-prompted baseline: a soft map and a binary mask per (item, prompt), rendered by ``task=segment``
    (alpha.png = the soft map, mask.png = the method's mask, IoU of that mask, threshold sweeps of the map)."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        super().check_config(cfg)
        template = cfg.method.template
        if template.count("{}") != 1:
            raise ConfigError("method.template", f"must contain '{{}}' exactly once (the prompt), got {template!r}")

    @staticmethod
    def build(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
        return {**AttentionBaseline.build(cfg, device), "task": build(cfg.task)}

    def unit_maps(self, items: list[Item], units: list[Unit]) -> UnitMaps:
        """Soft maps, binary masks and the number of UNet passes per unit (timings are added by the caller)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_step(self, batch: list[Item], batch_idx: int) -> list[ItemArtifacts]:
        units = units_of(batch, self.cfg.seed)
        start = time.perf_counter()
        maps = self.unit_maps(batch, units)
        maps.seconds = time.perf_counter() - start  # maps are on the CPU: the device work is done
        return self._state["task"].render(batch, units, maps, self.record)

    def conditioning(self, units: list[Unit]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each unit's text embedding (method.template around its prompt) and a (U, tokens) matrix whose row u
        averages the prompt's token positions."""
        tokenizer = self.prior.tokenizer
        texts, weights = [], torch.zeros(len(units), tokenizer.model_max_length)
        for u, unit in enumerate(units):
            text, positions = prompt_tokens(tokenizer, self.cfg.method.template, unit.prompt)
            texts.append(text)
            weights[u, positions] = 1.0 / len(positions)
        return self.embed(texts), weights.to(self.prior.device)
