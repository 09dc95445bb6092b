"""The base of every method: a LightningModule around a frozen diffusion prior, built as ``cls(cfg, record)``.

The prior is loaded in ``setup`` (once per process, on that process's device) and kept outside the module's
state, so nothing large is pickled for ``ddp_spawn`` and nothing is checkpointed. Subclasses extend ``build``
with what else they need and implement ``predict_step(batch: list[Item], batch_idx) -> list[ItemArtifacts]``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningModule
from omegaconf import DictConfig

from peekaboo.config.build import build
from peekaboo.embedding_cache import EmbeddingCache


class PriorModule(LightningModule):
    def __init__(self, cfg: DictConfig, record: dict[str, Any] | None = None):
        super().__init__()
        self.cfg = cfg
        self.record = record or {}  # copied into every result.json (config hash, presets used)
        self._state: dict[str, Any] = {}  # prior, embedding cache and whatever ``build`` adds (not module state)

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        """Start-up checks of the method's settings, run by ``peekaboo.config.validate`` before anything loads."""

    def setup(self, stage: str) -> None:
        self.prepare(self.trainer.strategy.root_device if self._trainer is not None else torch.device("cpu"))

    def prepare(self, device: torch.device | str, built: dict[str, Any] | None = None) -> None:
        """Build the frozen parts on ``device`` once (Lightning calls it from ``setup``; benchmarks directly).

        ``built``: what ``build`` returned for an equal configuration of what it reads (the Python API reuses it
        across calls that change only per-call settings such as the schedule; see ``PeekabooModule.build_key``)."""
        if not self._state:
            self._state.update(built if built is not None else self.build(self.cfg, torch.device(device)))

    @property
    def built(self) -> dict[str, Any]:
        """The frozen parts ``prepare`` built (to hand to another module with the same ``build_key``)."""
        return self._state

    @staticmethod
    def build(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
        """Instantiate the frozen parts once; also used outside Lightning (benchmarks, notebooks)."""
        prior = build(cfg.model, device=device)
        return {"prior": prior, "embeddings": EmbeddingCache(prior.embed_prompts)}

    @property
    def prior(self):
        return self._state["prior"]

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Prompt embeddings, computed once per distinct prompt per process."""
        return self._state["embeddings"](prompts)
