"""The Peekaboo loss: guidance terms on the composites plus ``lambda_alpha * alpha.sum()`` per unit.

Guidance terms (score distillation on the prior, CLIP) are switched on by their config sections. Each term's
prompt conditioning is computed once per batch by :meth:`PeekabooObjective.conditioning` (cached per prompt)
and handed to the engine, which indexes it per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from peekaboo.embedding_cache import EmbeddingCache
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites
from peekaboo.guidance.clip import ClipConfig, ClipGuidance
from peekaboo.guidance.sds import ScoreDistillation, SDSConfig
from peekaboo.priors.base import DiffusionPrior
from peekaboo.schedules import Iterations, Schedule


@dataclass
class LossConfig:
    """Schema of the ``loss`` group: which guidance terms are on, and the alpha penalty."""

    _target_: str = "peekaboo.objective.PeekabooObjective"
    name: str = "sds"
    lambda_alpha: Any = 0.05  # schedule; multiplies alpha.sum() (a sum over pixels, as the original)
    n_backgrounds: int = 1  # SDS samples (random backgrounds) per unit and iteration, summed
    sds: SDSConfig | None = field(default_factory=SDSConfig)
    clip: ClipConfig | None = None  # CLIP guidance (the paper's "CLIP" variant); None = off


@dataclass
class ObjectiveOutput:
    total: torch.Tensor  # scalar to back-propagate
    per_unit: dict[str, torch.Tensor]  # name -> (U,) for logging


def _as_dict(value: Any) -> dict:
    return dict(vars(value)) if hasattr(value, "__dataclass_fields__") else dict(value)


class PeekabooObjective:
    """Sums the enabled guidance terms per unit and adds the alpha penalty.

    ``prior`` is needed only by score distillation (it may be None when ``sds`` is off); CLIP is loaded here,
    once per process, on ``device``.
    """

    def __init__(
        self,
        prior: DiffusionPrior | None,
        lambda_alpha: Any = 0.05,
        sds: SDSConfig | dict | None = None,
        clip: ClipConfig | dict | None = None,
        device: torch.device | str | None = None,
        key: str = "loss",
    ):
        self.lambda_alpha = Schedule.parse(lambda_alpha, f"{key}.lambda_alpha")
        self.prior = prior
        self.sds = None if sds is None else ScoreDistillation(prior, **_as_dict(sds), key=f"{key}.sds")
        self.clip = None
        if clip is not None:
            device = device if device is not None else prior.device if prior is not None else "cpu"
            self.clip = ClipGuidance(**_as_dict(clip), device=device, key=f"{key}.clip")
        self._embed_prior = EmbeddingCache(prior.embed_prompts) if prior is not None else None
        self._sizes: dict[tuple[int, ...], torch.Tensor] = {}

    def _unit_sizes(self, counts: list[int], like: torch.Tensor) -> torch.Tensor:
        """Samples per unit as a device tensor, made once per layout (no host-to-device copy per iteration)."""
        key = tuple(counts)
        if key not in self._sizes:
            self._sizes[key] = torch.as_tensor(counts, device=like.device, dtype=like.dtype)
        return self._sizes[key]

    def conditioning(self, prompts: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(per-unit conditioning, shared conditioning) of every enabled term for one prompt per unit.

        Per-unit tensors have one row per prompt; the engine selects one row per sample.
        """
        cond, shared = {}, {}
        if self.sds is not None:
            cond["sds"] = self._embed_prior(prompts)
            shared["sds"] = self._embed_prior([""])
        if self.clip is not None:
            cond["clip"] = self.clip.embed(prompts)
        return cond, shared

    def __call__(
        self,
        composites: Composites,
        cond: dict[str, torch.Tensor],
        uncond: dict[str, torch.Tensor],
        rng: UnitRandom,
        counts: list[int],
        sample_unit: torch.Tensor,
        iteration: Iterations,
    ) -> ObjectiveOutput:
        """``cond``: per-sample conditioning (one row per composite), ``uncond``: shared, as from
        :meth:`conditioning`. ``iteration``: one for all units, or each unit's own (continuous batching)."""
        n_units = len(counts)
        per_unit: dict[str, torch.Tensor] = {}
        total = composites.images.new_zeros(n_units)
        samples = self._unit_sizes(counts, total)
        if self.sds is not None:
            out = self.sds(composites.images, cond["sds"], uncond["sds"], rng, counts, iteration, composites.layers)
            per_unit["sds"] = _per_unit(out.grad_sq.detach(), sample_unit, n_units)
            per_unit["t"] = _per_unit(out.timesteps.float(), sample_unit, n_units) / samples
            total = total + _per_unit(out.loss, sample_unit, n_units)
        if self.clip is not None:
            out = self.clip(composites.images, cond["clip"], iteration, counts)
            per_unit["clip_logit"] = _per_unit(out.logit, sample_unit, n_units) / samples
            total = total + _per_unit(out.loss, sample_unit, n_units)
        if composites.alpha is not None:
            alpha_sum = composites.alpha.flatten(1).sum(1)
            per_unit["alpha_mean"] = alpha_sum.detach() / composites.alpha[0].numel()
            total = total + self.lambda_alpha.at(iteration, alpha_sum) * alpha_sum
        return ObjectiveOutput(total.sum(), per_unit)


def _per_unit(values: torch.Tensor, sample_unit: torch.Tensor, n_units: int) -> torch.Tensor:
    return values.new_zeros(n_units).index_add(0, sample_unit, values)
