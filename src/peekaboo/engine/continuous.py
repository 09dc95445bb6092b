"""Continuous batching: a fixed number of slots, each unit leaves when it stops, the queue refills its slot.

Each unit is a one-unit scene with its own random streams, optimizer and iteration counter, so its trajectory
is the one it would have alone: every step runs the slots' scenes merged into one (``Scene.merge``: one batched
forward of their masks, the same parameters) and scores them in one batched objective call (one UNet call), but
draws, schedules (``Schedule.at``) and the stopping rule follow the unit's own iteration. A unit that stops after
n steps has the result of a fixed run of n iterations (tests/test_continuous.py).

As in ``peekaboo.engine.optimize`` nothing is read back to the host per iteration: only the stopping checks read
(one read per check round, see ``peekaboo.engine.stopping``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from peekaboo.engine.optimize import Conditioning, EngineResult, OptimizerFactory, check_finite
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Scene
from peekaboo.engine.stopping import ConvergenceCriterion, StopReason
from peekaboo.errors import NonFiniteError
from peekaboo.guidance.objective import PeekabooObjective


@dataclass
class UnitJob:
    """One unit to optimise: a one-unit scene, its streams and its conditioning (one row per sample)."""

    key: Hashable  # the caller's name for the unit
    scene: Scene
    rng: UnitRandom
    cond: Conditioning


@dataclass
class UnitOutcome:
    """A finished unit, on the CPU: like one column of ``EngineResult``."""

    key: Hashable
    outputs: dict[str, torch.Tensor]  # e.g. "alpha": (1, 1, H, W)
    history: dict[str, torch.Tensor]  # name -> (iterations,)
    frames: dict[str, torch.Tensor]  # name -> (T, C, H, W), the last one the output
    frame_iterations: list[int]
    iterations: int  # optimizer steps it ran
    stopped: StopReason
    seconds: float  # its share of the wall time of the steps it took part in


@dataclass
class _Running:
    job: UnitJob
    optimizer: torch.optim.Optimizer
    iteration: int = 0
    seconds: float = 0.0
    history: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    frames: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    frame_iterations: list[int] = field(default_factory=list)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)  # check iteration -> alpha, for the criterion


@dataclass
class _Layout:
    scene: Scene  # the active units' scenes merged
    rng: UnitRandom
    cond: Conditioning  # one row per sample
    counts: list[int]
    sample_unit: torch.Tensor


class ContinuousEngine:
    """Optimises submitted units in ``slots`` slots; ``run`` steps and returns the units that finished.

    ``criterion`` None stops every unit after ``iterations`` steps (the paper); otherwise a unit stops once the
    criterion says its mask has settled, or after ``iterations`` steps.
    """

    def __init__(
        self,
        objective: PeekabooObjective,
        optimizer_factory: OptimizerFactory,
        uncond: Any,
        slots: int,
        iterations: int,
        criterion: ConvergenceCriterion | None = None,
        snapshot_every: int = 0,
        on_iteration: Callable[[int], None] | None = None,
    ):
        self.objective, self.optimizer_factory, self.uncond = objective, optimizer_factory, uncond
        self.slots, self.iterations, self.criterion = slots, iterations, criterion
        self.snapshot_every, self.on_iteration = snapshot_every, on_iteration
        self.queue: deque[UnitJob] = deque()
        self.active: list[_Running] = []
        self.steps = 0  # batched steps taken so far
        self._layout: _Layout | None = None  # of the active units, until they change

    def submit(self, jobs: Iterable[UnitJob]) -> None:
        self.queue.extend(jobs)

    def run(self, drain: bool) -> list[UnitOutcome]:
        """Step until every unit has finished (``drain``), or until a slot is free and the queue is empty (more
        work should be submitted first); returns the units that finished meanwhile."""
        finished: list[UnitOutcome] = []
        while True:
            self._fill()
            if not self.active or (not drain and len(self.active) < self.slots):
                return finished
            finished += self._step()

    def _fill(self) -> None:
        while self.queue and len(self.active) < self.slots:
            job = self.queue.popleft()
            running = _Running(job, self.optimizer_factory([{"params": p} for p in job.scene.parameter_groups()]))
            if self.criterion is not None:
                running.masks[0] = job.scene.outputs()["alpha"][0]
            self.active.append(running)
            self._layout = None

    def _merged(self) -> _Layout:
        """The active units as one scene, with their streams, conditioning and layout; rebuilt when they change."""
        if self._layout is None:
            scenes = [r.job.scene for r in self.active]
            counts = [c for scene in scenes for c in scene.counts]
            rng = UnitRandom.join([r.job.rng for r in self.active])
            sample_unit = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts)).to(rng.device)
            cond = _concat([r.job.cond for r in self.active])
            self._layout = _Layout(type(scenes[0]).merge(scenes), rng, cond, counts, sample_unit)
        return self._layout

    def _step(self) -> list[UnitOutcome]:
        start = time.perf_counter()
        active, merged = self.active, self._merged()
        composites = merged.scene(merged.rng)
        iterations = [r.iteration for r in active]
        out = self.objective(
            composites, merged.cond, self.uncond, merged.rng, merged.counts, merged.sample_unit, iterations
        )
        for r in active:
            r.optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        for r in active:
            r.optimizer.step()
        for name, value in (*out.per_unit.items(), *composites.stats.items()):
            for j, r in enumerate(active):
                r.history.setdefault(name, []).append(value[j])
        for j, r in enumerate(active):
            if self.snapshot_every and r.iteration % self.snapshot_every == 0:
                r.frame_iterations.append(r.iteration)
                for name, value in composites.snapshot.items():
                    r.frames.setdefault(name, []).append(value[j])
            r.iteration += 1
        if self.on_iteration is not None:
            self.on_iteration(self.steps)
        self.steps += 1
        share = (time.perf_counter() - start) / len(active)
        for r in active:
            r.seconds += share
        return self._finish(self._stopped())

    def _stopped(self) -> dict[int, StopReason]:
        """Slot index -> why, for the units that stop now: one host read for all the units checked."""
        stopped = {j: StopReason.iterations for j, r in enumerate(self.active) if r.iteration >= self.iterations}
        criterion = self.criterion
        if criterion is None:
            return stopped
        checked, changes, masks = [], [], None
        for j, r in enumerate(self.active):
            if j in stopped or not criterion.due(r.iteration):
                continue
            masks = self._merged().scene.outputs()["alpha"] if masks is None else masks
            mask = masks[j]
            r.masks[r.iteration] = mask
            then = r.masks.get(criterion.kept(r.iteration))
            for old in [i for i in r.masks if i < criterion.kept(r.iteration)]:
                del r.masks[old]
            if then is not None and criterion.can_stop(r.iteration):
                checked.append(j)
                changes.append(criterion.change(mask, then))
        if changes:
            for j, change in zip(checked, torch.stack(changes).tolist(), strict=True):
                if change <= criterion.tolerance:
                    stopped[j] = StopReason.converged
        return stopped

    def _finish(self, stopped: dict[int, StopReason]) -> list[UnitOutcome]:
        if not stopped:
            return []
        outputs = self._merged().scene.outputs()
        outcomes = [
            self._outcome(self.active[j], {name: v[j : j + 1] for name, v in outputs.items()}, reason)
            for j, reason in sorted(stopped.items())
        ]
        self.active = [r for j, r in enumerate(self.active) if j not in stopped]
        self._layout = None
        return outcomes

    def _outcome(self, r: _Running, outputs: dict[str, torch.Tensor], reason: StopReason) -> UnitOutcome:
        outputs = {name: value.float().cpu() for name, value in outputs.items()}
        frame_iterations = list(r.frame_iterations)
        frames = {}
        if self.snapshot_every:  # the final frame: the output of the same name, as the fixed engine
            frame_iterations.append(r.iteration)
            frames = {
                name: torch.stack([*(v.float().cpu() for v in values), outputs[name][0]])
                for name, values in r.frames.items()
            }
        history = {name: torch.stack(values).float().cpu() for name, values in r.history.items()}
        try:
            check_finite({name: values[:, None] for name, values in history.items()}, outputs, True, 1)
        except NonFiniteError as err:
            err.key = r.job.key  # the stream names this unit's item and prompt
            raise
        return UnitOutcome(
            key=r.job.key,
            outputs=outputs,
            history=history,
            frames=frames,
            frame_iterations=frame_iterations,
            iterations=r.iteration,
            stopped=reason,
            seconds=r.seconds,
        )


def _concat(conds: list[Conditioning]) -> Conditioning:
    if isinstance(conds[0], torch.Tensor):
        return torch.cat(conds)
    return {name: _concat([c[name] for c in conds]) for name in conds[0]}


def stack_outcomes(outcomes: list[UnitOutcome]) -> EngineResult:
    """Several finished units (e.g. an item's prompts) as one ``EngineResult``: histories shorter than the longest
    are padded with NaN (``unit_iterations`` says where each ends), timelapses with their final frame."""
    longest = max(outcomes, key=lambda o: o.iterations)

    def pad(values: torch.Tensor, length: int, fill: torch.Tensor | float) -> torch.Tensor:
        if len(values) == length:
            return values
        tail = (fill if isinstance(fill, torch.Tensor) else values.new_full((), fill)).expand(
            length - len(values), *values.shape[1:]
        )
        return torch.cat([values, tail])

    history = {
        name: torch.stack([pad(o.history[name], longest.iterations, float("nan")) for o in outcomes], 1)
        for name in longest.history
    }
    frames = {
        name: torch.stack([pad(o.frames[name], len(longest.frames[name]), o.frames[name][-1:]) for o in outcomes], 1)
        for name in longest.frames
    }
    return EngineResult(
        outputs={name: torch.cat([o.outputs[name] for o in outcomes]) for name in longest.outputs},
        history=history,
        frames=frames,
        frame_iterations=longest.frame_iterations,
        iterations=longest.iterations,
        seconds=sum(o.seconds for o in outcomes),
        unit_iterations=[o.iterations for o in outcomes],
        stopped=[o.stopped.value for o in outcomes],
    )
