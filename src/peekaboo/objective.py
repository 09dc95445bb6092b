"""The Peekaboo loss: guidance terms on the composites plus ``lambda_alpha * alpha.sum()`` per unit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites
from peekaboo.guidance.sds import ScoreDistillation, SDSConfig
from peekaboo.priors.base import DiffusionPrior
from peekaboo.schedules import Schedule


@dataclass
class LossConfig:
    """Schema of the ``loss`` group: which guidance terms are on, and the alpha penalty."""

    _target_: str = "peekaboo.objective.PeekabooObjective"
    name: str = "sds"
    lambda_alpha: Any = 0.05  # schedule; multiplies alpha.sum() (a sum over pixels, as the original)
    n_backgrounds: int = 1  # SDS samples (random backgrounds) per unit and iteration, summed
    sds: SDSConfig | None = field(default_factory=SDSConfig)


@dataclass
class ObjectiveOutput:
    total: torch.Tensor  # scalar to back-propagate
    per_unit: dict[str, torch.Tensor]  # name -> (U,) for logging


class PeekabooObjective:
    """Sums the enabled guidance terms per unit and adds the alpha penalty."""

    def __init__(
        self, prior: DiffusionPrior, lambda_alpha: Any = 0.05, sds: SDSConfig | dict | None = None, key: str = "loss"
    ):
        self.lambda_alpha = Schedule.parse(lambda_alpha, f"{key}.lambda_alpha")
        self.sds = None
        if sds is not None:
            sds = dict(vars(sds)) if isinstance(sds, SDSConfig) else dict(sds)
            self.sds = ScoreDistillation(prior, **sds, key=f"{key}.sds")
        self.prior = prior
        self._sizes: dict[tuple[int, ...], torch.Tensor] = {}

    def _unit_sizes(self, counts: list[int], like: torch.Tensor) -> torch.Tensor:
        """Samples per unit as a device tensor, made once per layout (no host-to-device copy per iteration)."""
        key = tuple(counts)
        if key not in self._sizes:
            self._sizes[key] = torch.as_tensor(counts, device=like.device, dtype=like.dtype)
        return self._sizes[key]

    def __call__(
        self,
        composites: Composites,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        rng: UnitRandom,
        counts: list[int],
        sample_unit: torch.Tensor,
        iteration: int,
    ) -> ObjectiveOutput:
        n_units = len(counts)
        per_unit: dict[str, torch.Tensor] = {}
        total = composites.images.new_zeros(n_units)
        if self.sds is not None:
            out = self.sds(composites.images, cond, uncond, rng, counts, iteration, composites.layers)
            per_unit["sds"] = _per_unit(out.grad_sq.detach(), sample_unit, n_units)
            per_unit["t"] = _per_unit(out.timesteps.float(), sample_unit, n_units) / self._unit_sizes(counts, total)
            total = total + _per_unit(out.loss, sample_unit, n_units)
        if composites.alpha is not None:
            alpha_sum = composites.alpha.flatten(1).sum(1)
            per_unit["alpha_mean"] = alpha_sum.detach() / composites.alpha[0].numel()
            total = total + self.lambda_alpha(iteration) * alpha_sum
        return ObjectiveOutput(total.sum(), per_unit)


def _per_unit(values: torch.Tensor, sample_unit: torch.Tensor, n_units: int) -> torch.Tensor:
    return values.new_zeros(n_units).index_add(0, sample_unit, values)
