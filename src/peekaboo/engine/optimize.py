"""The optimisation loop shared by every task: one batched forward, one backward, one step per iteration.

Nothing in the loop reads a value back to the host (no ``.item()``): losses and timelapse frames stay on
the device and are copied once at the end, where they are checked to be finite (``NonFiniteError``): a
diverged optimisation must fail its items rather than write NaN masks as results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Scene
from peekaboo.errors import NonFiniteError
from peekaboo.guidance.objective import PeekabooObjective

OptimizerFactory = Callable[[list[dict]], torch.optim.Optimizer]
Conditioning = torch.Tensor | Mapping[str, torch.Tensor]


def per_sample(cond: Conditioning, sample_unit: torch.Tensor) -> Conditioning:
    """Rows of per-unit conditioning (a tensor or a dict of tensors) for each sample's unit."""
    if isinstance(cond, torch.Tensor):
        return cond.index_select(0, sample_unit.to(cond.device))
    return {name: per_sample(value, sample_unit) for name, value in cond.items()}


@dataclass
class Step:
    """What an ``on_step`` observer sees after each optimizer step (tensors stay on the device)."""

    iteration: int
    terms: dict[str, torch.Tensor]  # name -> (U,) this iteration's per-unit loss terms and statistics
    frame: dict[str, torch.Tensor] | None  # the timelapse snapshot taken at this iteration (per-unit maps), if any


@dataclass
class EngineResult:
    outputs: dict[str, torch.Tensor]  # final per-unit maps on the CPU, e.g. "alpha": (U, 1, H, W)
    history: dict[str, torch.Tensor]  # name -> (iterations, U) on the CPU
    frames: dict[str, torch.Tensor]  # name -> (T, U, C, H, W) on the CPU
    frame_iterations: list[int]  # iteration index of each frame (frame taken before that step)
    iterations: int  # steps of the longest unit
    seconds: float
    unit_iterations: list[int] | None = None  # steps each unit ran, when they differ (continuous batching)
    stopped: list[str] | None = None  # why each unit stopped (``StopReason`` values); None: all after ``iterations``


def optimize(
    scene: Scene,
    objective: PeekabooObjective,
    rng: UnitRandom,
    optimizer_factory: OptimizerFactory,
    cond: Conditioning,
    uncond: Any,
    iterations: int,
    snapshot_every: int = 0,
    on_iteration: Callable[[int], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> EngineResult:
    """Optimise every unit of ``scene`` for ``iterations`` steps.

    ``cond`` is per-unit conditioning (a tensor, or a dict of tensors, with one row per unit, e.g. from
    ``objective.conditioning(prompts)``): the objective receives one row per sample. ``uncond`` is passed through.

    Each unit's parameters form their own optimizer parameter group (``scene.parameter_groups()``), so
    element-wise optimizers (SGD, Adam) update units exactly as separate optimizers would. ``history`` holds the
    objective's per-unit terms and the scene's ``Composites.stats`` at every iteration.

    ``on_iteration(iteration)`` is called after each step; ``on_step(Step)`` also gets that step's terms and
    timelapse frame (live progress and loss curves; reading them on the host is the observer's choice).
    """
    start = time.perf_counter()
    counts = scene.counts
    n_units = len(counts)
    sample_unit = torch.repeat_interleave(torch.arange(n_units), torch.as_tensor(counts)).to(rng.device)
    cond_samples = per_sample(cond, sample_unit)
    optimizer = optimizer_factory([{"params": group} for group in scene.parameter_groups()])
    history: dict[str, list[torch.Tensor]] = {}
    frames: dict[str, list[torch.Tensor]] = {}
    frame_iterations: list[int] = []
    for iteration in range(iterations):
        composites = scene(rng)
        out = objective(composites, cond_samples, uncond, rng, counts, sample_unit, iteration)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()
        terms = {**out.per_unit, **composites.stats}
        for name, value in terms.items():
            history.setdefault(name, []).append(value)
        frame = None
        if snapshot_every and iteration % snapshot_every == 0:
            frame_iterations.append(iteration)
            frame = composites.snapshot
            for name, value in frame.items():
                frames.setdefault(name, []).append(value)
        if on_iteration is not None:
            on_iteration(iteration)
        if on_step is not None:
            on_step(Step(iteration, terms, frame))
    flags = [torch.isfinite(p).all() for p in scene.parameters()]
    parameters_finite = torch.stack(flags).all().cpu() if flags else torch.tensor(True)  # one read, at the end
    outputs = {name: value.float().cpu() for name, value in scene.outputs().items()}
    history_cpu = {name: torch.stack(values).float().cpu() for name, values in history.items()}
    check_finite(history_cpu, outputs, bool(parameters_finite), n_units)
    if snapshot_every:  # the final frame: the output of the same name (the same layout as the snapshots)
        frame_iterations.append(iterations)
        for name, values in frames.items():
            values.append(outputs[name])
    return EngineResult(
        outputs=outputs,
        history=history_cpu,
        frames={name: torch.stack([v.float().cpu() for v in values]) for name, values in frames.items()},
        frame_iterations=frame_iterations,
        iterations=iterations,
        seconds=time.perf_counter() - start,
    )


def check_finite(
    history: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor], parameters_finite: bool, n_units: int
) -> None:
    """Raise ``NonFiniteError`` naming the units whose curves or outputs hold NaN/inf (all units when only the
    shared parameters do), with the first iteration at which a curve went non-finite."""
    bad = torch.zeros(n_units, dtype=torch.bool)
    first: int | None = None
    for values in history.values():  # (iterations, U)
        finite = torch.isfinite(values)
        bad |= ~finite.all(dim=0)
        rows = (~finite.all(dim=1)).nonzero()
        if len(rows):
            first = min(int(rows[0]), first if first is not None else int(rows[0]))
    everything = not parameters_finite
    for values in outputs.values():  # (U, ...) per unit, or per layer (e.g. the grid's shared layers)
        finite = torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
        if len(values) == n_units:
            bad |= ~finite
        else:
            everything |= not bool(finite.all())
    if everything and not bad.any():
        bad[:] = True
    if bad.any():
        raise NonFiniteError(bad.nonzero().flatten().tolist(), first)
