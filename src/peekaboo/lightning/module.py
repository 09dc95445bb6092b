"""``trainer.predict`` drives Peekaboo: each predict step optimises a batch of items from scratch.

With ``schedule.stop=converged`` each predict step instead hands one item to a continuous batch
(``peekaboo.lightning.stream``) and returns the items that finished meanwhile; the last step drains it.

The frozen prior is loaded in ``setup`` by ``PriorModule`` (see there), with the objective, guide and task.
``optimize_batch`` and ``optimize_one_at_a_time`` work without a Trainer (benchmarks, notebooks, tests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from peekaboo.config.build import build
from peekaboo.data.base import Item
from peekaboo.engine.configs import StopRule
from peekaboo.engine.continuous import ContinuousEngine, UnitJob
from peekaboo.engine.optimize import EngineResult, Step, optimize, per_sample
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.reference import optimize_one_at_a_time
from peekaboo.engine.scene import Scene
from peekaboo.engine.stopping import ConvergenceCriterion
from peekaboo.guidance.objective import PeekabooObjective
from peekaboo.lightning.prior_module import PriorModule
from peekaboo.lightning.stream import ItemStream
from peekaboo.tasks.base import ItemArtifacts, Unit, units_named_on_divergence

BUILT_GROUPS = ("model", "loss", "guidance_map", "task")  # what ``PeekabooModule.build`` instantiates


class PeekabooModule(PriorModule):
    def __init__(self, cfg: DictConfig, record: dict[str, Any] | None = None):
        super().__init__(cfg, record)
        self._stream: ItemStream | None = None  # this rank's continuous batch (schedule.stop=converged)

    @staticmethod
    def build(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
        """Instantiate the frozen parts once; also used outside Lightning (benchmarks, notebooks).

        The diffusion prior is loaded only when a term needs it (``loss=clip`` alone does not), the guide's
        models only when a bilateral filter uses the guide."""
        prior = build(cfg.model, device=device) if PeekabooObjective.needs_prior(cfg.loss) else None
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

    def step_observer(self) -> Callable[[Step], None] | None:
        """The Trainer's callbacks that watch the optimisation itself (the progress bar, live loss curves) define
        ``on_optimization_step(trainer, module, step)``; it is called after every optimizer step."""
        if self._trainer is None:
            return None
        watchers = [cb for cb in self.trainer.callbacks if hasattr(cb, "on_optimization_step")]
        if not watchers:
            return None

        def observe(step: Step) -> None:
            for callback in watchers:
                callback.on_optimization_step(self.trainer, self, step)

        return observe

    @staticmethod
    def build_key(cfg: DictConfig) -> str:
        """The part of ``cfg`` that ``build`` reads (the groups it instantiates, and whether a filter needs the
        guide): modules whose keys are equal can share what it built."""
        groups = {g: OmegaConf.to_container(cfg[g], resolve=True, enum_to_str=True) for g in BUILT_GROUPS}
        return json.dumps({**groups, "bilateral": cfg.param.bilateral is not None}, sort_keys=True, default=str)

    def scene(self, items: list[Item], units: list[Unit], rng: UnitRandom, n_backgrounds: int) -> Scene:
        """The task's scene for these items and units: images, guides and the parametrization on the device."""
        cfg, state = self.cfg, self._state
        has_images = all(item.image is not None for item in items)  # False for text-only generation
        images = torch.stack([item.image for item in items]).to(state["device"]) if has_images else None
        guides = state["guide"](images, items) if has_images and cfg.param.bilateral is not None else None
        parametrization = build(cfg.param, "recipe")
        return state["task"].build_scene(items, units, rng, parametrization, guides, images, n_backgrounds)

    def optimize_batch(
        self,
        batch: list[Item],
        on_iteration: Callable[[int], None] | None = None,
        on_step: Callable[[Step], None] | None = None,
    ) -> tuple[list[Unit], EngineResult]:
        """Every (item, prompt) unit of the batch optimised together by the engine (observers: see ``optimize``)."""
        cfg, state = self.cfg, self._state
        units = state["task"].units(batch, cfg.seed)
        rng = UnitRandom([u.random_seed for u in units], state["device"])
        with torch.enable_grad(), units_named_on_divergence(batch, units):
            scene = self.scene(batch, units, rng, cfg.loss.n_backgrounds)
            cond, uncond = state["objective"].conditioning([u.prompt for u in units])
            result = optimize(
                scene,
                state["objective"],
                rng,
                build(cfg.optimizer),
                cond=cond,
                uncond=uncond,
                iterations=cfg.schedule.iterations,
                snapshot_every=cfg.schedule.timelapse_every,
                on_iteration=on_iteration,
                on_step=on_step,
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
            cond, uncond = state["objective"].conditioning([u.prompt for u in units])
            outputs = optimize_one_at_a_time(
                build_scene,
                [u.random_seed for u in units],
                state["objective"],
                build(cfg.optimizer),
                cond=cond,
                uncond=uncond,
                iterations=cfg.schedule.iterations,
                device=state["device"],
                samples_per_iteration=cfg.loss.n_backgrounds,
                on_iteration=on_iteration,
            )
        return units, outputs

    @property
    def continuous(self) -> bool:
        """Whether units run in a continuous batch (``schedule.stop=converged``) rather than in fixed batches."""
        return StopRule(getattr(self.cfg.schedule.stop, "value", self.cfg.schedule.stop)) is StopRule.converged

    def item_stream(self, slots: int, on_iteration: Callable[[int], None] | None = None) -> ItemStream:
        """A continuous batch of ``slots`` units stopped by ``schedule.stop`` (at most ``schedule.iterations``)."""
        cfg, state = self.cfg, self._state
        criterion = ConvergenceCriterion(**cfg.schedule.converged) if self.continuous else None
        _, uncond = state["objective"].conditioning([""])
        engine = ContinuousEngine(
            state["objective"],
            build(cfg.optimizer),
            uncond,
            slots,
            cfg.schedule.iterations,
            criterion,
            snapshot_every=cfg.schedule.timelapse_every,
            on_iteration=on_iteration,
        )
        return ItemStream(engine, self.unit_jobs)

    def unit_jobs(self, item: Item, key: int) -> tuple[list[Unit], list[UnitJob]]:
        """One job per (item, prompt) unit: a one-unit scene with the unit's own streams and conditioning rows."""
        cfg, state = self.cfg, self._state
        units = state["task"].units([item], cfg.seed)
        cond, _ = state["objective"].conditioning([u.prompt for u in units])
        jobs = []
        with torch.enable_grad():
            for k, unit in enumerate(units):
                rng = UnitRandom([unit.random_seed], state["device"])
                scene = self.scene([item], [unit], rng, cfg.loss.n_backgrounds)
                rows = torch.full((scene.counts[0],), k, device=state["device"])
                jobs.append(UnitJob((key, k), scene, rng, per_sample(cond, rows)))
        return units, jobs

    def optimize_stream(
        self, items: Iterable[Item], slots: int, on_iteration: Callable[[int], None] | None = None
    ) -> list[tuple[Item, list[Unit], EngineResult]]:
        """Every item through one continuous batch of ``slots`` units, in the order they finish (no Trainer)."""
        stream = self.item_stream(slots, on_iteration)
        stream.submit(items)
        with torch.enable_grad():
            return stream.run(drain=True)

    def predict_step(self, batch: list[Item], batch_idx: int) -> list[ItemArtifacts]:
        record = {**self.record, "rank": self.global_rank}
        if self.continuous:
            return self._stream_step(batch, batch_idx, record)
        units, result = self.optimize_batch(batch, on_step=self.step_observer())
        return self._state["task"].artifacts(batch, units, result, record)

    def _stream_step(self, batch: list[Item], batch_idx: int, record: dict) -> list[ItemArtifacts]:
        """Adds the batch's items to this rank's continuous batch; returns the items that finished meanwhile."""
        if batch_idx == 0 or self._stream is None:
            self._stream = self.item_stream(self.cfg.trainer.batch_size)
        self._stream.submit(batch)
        last = self._trainer is None or batch_idx == self.trainer.num_predict_batches[0] - 1
        with torch.enable_grad():
            finished = self._stream.run(drain=last)
        task = self._state["task"]
        return [art for item, units, result in finished for art in task.artifacts([item], units, result, record)]
