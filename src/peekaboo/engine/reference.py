"""The original code's loop structure: one unit at a time, one SDS call per background sample.

Kept as a tested reference for the batched engine and as ``make bench``'s baseline. It uses the same scenes,
objective and per-unit random streams as ``peekaboo.engine.optimize``: with one background sample per
iteration it reproduces the engine's result for every unit (tests/test_batching.py), so the speed
difference between the two is batching alone. With several samples it makes one call per sample and sums
their gradients, as the original's BATCH_SIZE loop; its draws then come in another order than the engine's
single batched draw, so results agree in distribution only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from peekaboo.engine.optimize import Conditioning, OptimizerFactory, per_sample
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Scene
from peekaboo.guidance.objective import PeekabooObjective


def optimize_one_at_a_time(
    build_scene: Callable[[int, UnitRandom], Scene],
    seeds: Sequence[int],
    objective: PeekabooObjective,
    optimizer_factory: OptimizerFactory,
    cond: Conditioning,
    uncond: Any,
    iterations: int,
    device: torch.device | str,
    samples_per_iteration: int = 1,
    on_iteration: Callable[[int, int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Optimise unit u (``build_scene(u, rng)``: a one-unit scene, one sample per call) alone, for each u.

    ``cond`` is per-unit conditioning as the engine takes it (``objective.conditioning(prompts)``).
    Returns the final per-unit outputs stacked over units on the CPU, like ``EngineResult.outputs``.
    ``on_iteration(unit, iteration)`` is called after each optimizer step.
    """
    outputs: dict[str, list[torch.Tensor]] = {}
    for unit, seed in enumerate(seeds):
        rng = UnitRandom([seed], device)
        scene = build_scene(unit, rng)
        if scene.counts != [1]:
            raise ValueError(f"the reference loop needs one-unit scenes with one sample per call, got {scene.counts}")
        optimizer = optimizer_factory([{"params": group} for group in scene.parameter_groups()])
        sample_unit = torch.zeros(1, dtype=torch.long, device=device)
        unit_cond = per_sample(cond, torch.tensor([unit], device=device))
        for iteration in range(iterations):
            optimizer.zero_grad(set_to_none=True)
            for sample in range(samples_per_iteration):
                composites = scene(rng)
                if sample:  # the alpha penalty once per iteration, not once per sample
                    composites = dataclasses.replace(composites, alpha=None)
                out = objective(composites, unit_cond, uncond, rng, [1], sample_unit, iteration)
                out.total.backward()
            optimizer.step()
            if on_iteration is not None:
                on_iteration(unit, iteration)
        for name, value in scene.outputs().items():
            outputs.setdefault(name, []).append(value.float().cpu())
    return {name: torch.cat(values) for name, values in outputs.items()}
