"""The interface of a guidance term: one summand of the Peekaboo loss, scored per composite sample.

A term is selected by the ``_target_`` of its section of the ``loss`` config (``loss.sds``, ``loss.clip``); the
objective makes it with whichever of ``prior`` and ``device`` its constructor takes, plus ``key`` (its config key,
for error messages), and sums the enabled terms per unit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
from omegaconf import DictConfig

if TYPE_CHECKING:
    from peekaboo.engine.random import UnitRandom
    from peekaboo.engine.scene import Composites
    from peekaboo.schedules import Iterations


@dataclass
class TermOutput:
    loss: torch.Tensor  # (S,) per-sample loss (or surrogate whose gradient is the term's)
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (S,), logged per unit as a sum
    means: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (S,), logged per unit as a mean


class GuidanceTerm(ABC):
    needs_prior: ClassVar[bool] = False  # True: the diffusion prior (``model``) is loaded and handed to it

    @abstractmethod
    def conditioning(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(one row per prompt, conditioning shared by every sample or None); computed once per batch."""

    @abstractmethod
    def score(
        self,
        composites: Composites,
        cond: torch.Tensor,
        shared: torch.Tensor | None,
        rng: UnitRandom,
        counts: Sequence[int],
        iteration: Iterations,
    ) -> TermOutput:
        """The term on the composites; ``cond`` has one row per sample (the engine indexes it by unit).
        ``iteration``: one for all units, or each unit's own (continuous batching: its schedules follow it)."""

    @classmethod  # noqa: B027 (an optional hook: most terms need no check beyond their schema)
    def check_config(cls, cfg: DictConfig, key: str) -> None:
        """Start-up checks of the term's section ``key`` of the job config (a ``ConfigError`` naming the key)."""
