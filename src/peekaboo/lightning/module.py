"""``trainer.predict`` drives Peekaboo: each predict step optimises a batch of items from scratch.

The frozen prior is loaded in ``setup`` (once per process, on that process's device) and kept outside the
module's state, so nothing large is pickled for ``ddp_spawn`` and nothing is checkpointed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from omegaconf import DictConfig
from tqdm.auto import tqdm

from peekaboo.config.build import build
from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult, optimize
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.reference import optimize_one_at_a_time
from peekaboo.engine.scene import Scene
from peekaboo.tasks.base import ItemArtifacts, Unit


class PeekabooModule(LightningModule):
    def __init__(self, cfg: DictConfig, record: dict[str, Any] | None = None):
        super().__init__()
        self.cfg = cfg
        self.record = record or {}
        self._state: dict[str, Any] = {}  # prior, objective, guide map, task, embedding cache (not module state)

    def setup(self, stage: str) -> None:
        self.prepare(self.trainer.strategy.root_device if self._trainer is not None else torch.device("cpu"))

    def prepare(self, device: torch.device | str) -> None:
        """Build the frozen parts on ``device`` once (Lightning calls it from ``setup``; benchmarks directly)."""
        if not self._state:
            self._state.update(self.build(self.cfg, torch.device(device)))

    @staticmethod
    def build(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
        """Instantiate the frozen parts once; also used outside Lightning (benchmarks, notebooks)."""
        prior = build(cfg.model, device=device)
        guide = build(cfg.guidance_map)
        guide.setup(device)
        return {
            "prior": prior,
            "objective": build(cfg.loss, "n_backgrounds", prior=prior),
            "guide": guide,
            "task": build(cfg.task),
            "embeddings": {},
        }

    @property
    def prior(self):
        return self._state["prior"]

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Prompt embeddings, computed once per distinct prompt per process."""
        cache = self._state["embeddings"]
        missing = [p for p in dict.fromkeys(prompts) if p not in cache]
        if missing:
            for prompt, embedding in zip(missing, self.prior.embed_prompts(missing), strict=True):
                cache[prompt] = embedding
        return torch.stack([cache[p] for p in prompts])

    def scene(self, items: list[Item], units: list[Unit], rng: UnitRandom, n_backgrounds: int) -> Scene:
        """The task's scene for these items and units: images, guides and the parametrization on the device."""
        cfg, state = self.cfg, self._state
        images = torch.stack([item.image for item in items]).to(self.prior.device)
        guides = state["guide"](images, items) if cfg.param.bilateral is not None else None
        parametrization = build(cfg.param, "recipe")
        return state["task"].build_scene(items, units, rng, parametrization, guides, images, n_backgrounds)

    def optimize_batch(
        self, batch: list[Item], on_iteration: Callable[[int], None] | None = None
    ) -> tuple[list[Unit], EngineResult]:
        """Every (item, prompt) unit of the batch optimised together by the engine; usable outside Lightning."""
        cfg, state = self.cfg, self._state
        units = state["task"].units(batch, cfg.seed)
        rng = UnitRandom([u.seed for u in units], self.prior.device)
        with torch.enable_grad():
            scene = self.scene(batch, units, rng, cfg.loss.n_backgrounds)
            result = optimize(
                scene,
                state["objective"],
                rng,
                build(cfg.optimizer),
                cond=self.embed([u.prompt for u in units]),
                uncond=self.embed([""]),
                iterations=cfg.schedule.iterations,
                snapshot_every=cfg.schedule.timelapse_every,
                on_iteration=on_iteration,
            )
        return units, result

    def optimize_one_at_a_time(
        self, batch: list[Item], on_iteration: Callable[[int, int], None] | None = None
    ) -> tuple[list[Unit], dict[str, torch.Tensor]]:
        """The same units through the original's loop structure (``peekaboo.engine.reference``): one unit at a
        time, one SDS call per background sample. The benchmark's baseline; equal to the engine (tested)."""
        cfg, state = self.cfg, self._state
        units = state["task"].units(batch, cfg.seed)

        def build_scene(index: int, rng: UnitRandom) -> Scene:
            unit = units[index]
            return self.scene([batch[unit.item]], [dataclasses.replace(unit, item=0)], rng, 1)

        with torch.enable_grad():
            outputs = optimize_one_at_a_time(
                build_scene,
                [u.seed for u in units],
                state["objective"],
                build(cfg.optimizer),
                cond=self.embed([u.prompt for u in units]),
                uncond=self.embed([""]),
                iterations=cfg.schedule.iterations,
                samples_per_iteration=cfg.loss.n_backgrounds,
                on_iteration=on_iteration,
            )
        return units, outputs

    def predict_step(self, batch: list[Item], batch_idx: int) -> list[ItemArtifacts]:
        show = (
            self._trainer is not None and self.trainer.is_global_zero and self.trainer.progress_bar_callback is not None
        )
        with tqdm(
            total=self.cfg.schedule.iterations,
            desc="iterations",
            leave=False,
            position=1,
            disable=not show,
            dynamic_ncols=True,
        ) as bar:
            units, result = self.optimize_batch(batch, on_iteration=lambda _: bar.update(1))
        return self._state["task"].artifacts(batch, units, result, {**self.record, "rank": self.global_rank})
