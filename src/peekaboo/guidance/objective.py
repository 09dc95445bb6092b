"""The Peekaboo loss: guidance terms on the composites plus ``lambda_alpha * alpha.sum()`` per unit.

Guidance terms (score distillation on the prior, CLIP, or any ``GuidanceTerm``) are the sections of the ``loss``
config that name a class (``_target_``); ``null`` switches one off. Each term's prompt conditioning is computed
once per batch by :meth:`PeekabooObjective.conditioning` and handed to the engine, which indexes it per sample.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from peekaboo.config.validate import component_class, positive
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites
from peekaboo.errors import ConfigError
from peekaboo.guidance.term import GuidanceTerm
from peekaboo.priors.base import DiffusionPrior
from peekaboo.schedules import Iterations, Schedule

log = logging.getLogger("peekaboo")


@dataclass
class ObjectiveOutput:
    total: torch.Tensor  # scalar to back-propagate
    per_unit: dict[str, torch.Tensor]  # name -> (U,) for logging


def term_sections(loss: DictConfig) -> dict[str, DictConfig]:
    """The enabled guidance terms of a ``loss`` config: name -> section (those that name a class)."""
    return {name: section for name, section in loss.items() if isinstance(section, Mapping) and "_target_" in section}


class PeekabooObjective:
    """Sums the enabled guidance terms per unit and adds the alpha penalty.

    ``terms``: name -> a factory of the term (``functools.partial`` of a ``GuidanceTerm`` with its settings, as
    the config makes it) or None (off). Each is called with ``key`` and whichever of ``prior`` and ``device`` it
    takes; ``prior`` may be None when no term needs it.
    """

    def __init__(
        self,
        prior: DiffusionPrior | None,
        lambda_alpha: Any = 0.05,
        device: torch.device | str | None = None,
        key: str = "loss",
        **terms: Callable[..., GuidanceTerm] | None,
    ):
        self.lambda_alpha = Schedule.parse(lambda_alpha, f"{key}.lambda_alpha")
        device = device if device is not None else prior.device if prior is not None else "cpu"
        runtime = {"prior": prior, "device": device}
        self.terms: dict[str, GuidanceTerm] = {}
        for name, factory in terms.items():
            if factory is not None:
                accepted = inspect.signature(factory).parameters
                given = {k: v for k, v in runtime.items() if k in accepted}
                self.terms[name] = factory(key=f"{key}.{name}", **given)
        self._sizes: dict[tuple[int, ...], torch.Tensor] = {}

    @staticmethod
    def needs_prior(loss: DictConfig) -> bool:
        """Whether a term of this ``loss`` config scores with the diffusion prior (else it is not loaded)."""
        return any(get_term(section, f"loss.{name}").needs_prior for name, section in term_sections(loss).items())

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        lambda_alpha = Schedule.parse(cfg.loss.lambda_alpha, "loss.lambda_alpha")
        if any(v < 0 for v in lambda_alpha.values):
            log.warning(
                "loss.lambda_alpha=%s is negative: it rewards a larger mask instead of a minimal one (the paper's "
                "alpha penalty is >= 0)",
                list(lambda_alpha.values),
            )
        positive(cfg, "loss.n_backgrounds")
        terms = term_sections(cfg.loss)
        if not terms:
            raise ConfigError("loss", "no guidance term is on: use loss=sds, loss=clip or loss=sds_clip")
        for name, section in terms.items():
            get_term(section, f"loss.{name}").check_config(cfg, f"loss.{name}")

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
        for name, term in self.terms.items():
            cond[name], common = term.conditioning(prompts)
            if common is not None:
                shared[name] = common
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
        for name, term in self.terms.items():
            out = term.score(composites, cond[name], uncond.get(name), rng, counts, iteration)
            for log, values in out.sums.items():
                per_unit[log] = _per_unit(values, sample_unit, n_units)
            for log, values in out.means.items():
                per_unit[log] = _per_unit(values, sample_unit, n_units) / samples
            total = total + _per_unit(out.loss, sample_unit, n_units)
        if composites.alpha is not None:
            alpha_sum = composites.alpha.flatten(1).sum(1)
            per_unit["alpha_mean"] = alpha_sum.detach() / composites.alpha[0].numel()
            total = total + self.lambda_alpha.at(iteration, alpha_sum) * alpha_sum
        return ObjectiveOutput(total.sum(), per_unit)


def get_term(section: DictConfig, key: str) -> type[GuidanceTerm]:
    return component_class(section._target_, f"{key}._target_")


def _per_unit(values: torch.Tensor, sample_unit: torch.Tensor, n_units: int) -> torch.Tensor:
    return values.new_zeros(n_units).index_add(0, sample_unit, values)
