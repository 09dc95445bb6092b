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
        """Instantiate the frozen parts once; also used outside Lightning (benchmarks, notebooks).

        The diffusion prior is loaded only when a term needs it (``loss=clip`` alone does not), the guide's
        models only when a bilateral filter uses the guide."""
        prior = build(cfg.model, device=device) if cfg.loss.sds is not None else None
        guide = build(cfg.guidance_map)
        if cfg.param.bilateral is not None:
            guide.setup(device)
        return {
            "device": device,
            "prior": prior,
            "objective": build(cfg.loss, "n_backgrounds", prior=prior, device=device),
            "guide": guide,
            "task": build(cfg.task),
        }

    def predict_step(self, batch: list[Item], batch_idx: int) -> list[ItemArtifacts]:
        cfg, state = self.cfg, self._state
        task = state["task"]
        device = state["device"]
        units = task.units(batch, cfg.seed)
        rng = UnitRandom([u.random_seed for u in units], device)
        has_images = all(item.image is not None for item in batch)  # False for text-only generation
        images = torch.stack([item.image for item in batch]).to(device) if has_images else None
        guides = state["guide"](images, batch) if has_images and cfg.param.bilateral is not None else None
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
            cond, uncond = state["objective"].conditioning([u.prompt for u in units])
            result = optimize(
                scene,
                state["objective"],
                rng,
                optimizer,
                cond=cond,
                uncond=uncond,
                iterations=cfg.schedule.iterations,
                snapshot_every=cfg.schedule.timelapse_every,
                on_iteration=lambda _: bar.update(1),
            )
        return task.artifacts(batch, units, result, {**self.record, "rank": self.global_rank})
