"""``trainer.predict`` drives Peekaboo: each predict step optimises a batch of items from scratch.

The frozen prior is loaded in ``setup`` by ``PriorModule`` (see there), with the objective, guide and task.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from peekaboo.config.build import build
from peekaboo.data.base import Item
from peekaboo.engine.optimize import optimize
from peekaboo.engine.random import UnitRandom
from peekaboo.lightning.prior_module import PriorModule
from peekaboo.tasks.base import ItemArtifacts


class PeekabooModule(PriorModule):
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

    def predict_step(self, batch: list[Item], batch_idx: int) -> list[ItemArtifacts]:
        cfg, state = self.cfg, self._state
        task = state["task"]
        device = self.prior.device
        units = task.units(batch, cfg.seed)
        rng = UnitRandom([u.seed for u in units], device)
        images = torch.stack([item.image for item in batch]).to(device)
        guides = state["guide"](images, batch) if cfg.param.bilateral is not None else None
        parametrization = build(cfg.param, "recipe")
        optimizer = build(cfg.optimizer)
        show = (
            self._trainer is not None and self.trainer.is_global_zero and self.trainer.progress_bar_callback is not None
        )
        with (
            torch.enable_grad(),
            tqdm(
                total=cfg.schedule.iterations,
                desc="iterations",
                leave=False,
                position=1,
                disable=not show,
                dynamic_ncols=True,
            ) as bar,
        ):
            scene = task.build_scene(batch, units, rng, parametrization, guides, images, cfg.loss.n_backgrounds)
            result = optimize(
                scene,
                state["objective"],
                rng,
                optimizer,
                cond=self.embed([u.prompt for u in units]),
                uncond=self.embed([""]),
                iterations=cfg.schedule.iterations,
                snapshot_every=cfg.schedule.timelapse_every,
                on_iteration=lambda _: bar.update(1),
            )
        return task.artifacts(batch, units, result, self.record)
