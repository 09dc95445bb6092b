"""Values that may change over the iterations of one optimisation (threestudio-style schedules).

A schedule is written in the config either as a number (constant) or as a list of ``[iteration, value]``
points, interpolated linearly in between and held constant before the first and after the last point:
``loss.lambda_alpha=[[0,0.02],[150,0.05]]``.

Under continuous batching the units of one step are at different iterations of their own optimisations, so
schedules are also evaluated per unit (``Schedule.at``): each unit sees its own iteration, never its neighbours'.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from peekaboo.errors import ConfigError

Iterations = int | Sequence[int]  # one iteration for every unit, or each unit's own


@dataclass(frozen=True)
class Schedule:
    iterations: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def parse(cls, value: Any, key: str) -> Schedule:
        """Parse a config value; ``key`` names it in the error message."""
        if isinstance(value, bool):
            raise ConfigError(key, f"expected a number or a list of [iteration, value] points, got {value!r}")
        if isinstance(value, int | float):
            return cls._checked((0,), (float(value),), key)
        if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0:
            points = []
            for point in value:
                if (
                    not isinstance(point, Sequence)
                    or isinstance(point, str)
                    or len(point) != 2
                    or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in point)
                ):
                    raise ConfigError(key, f"each schedule point must be [iteration, value], got {point!r}")
                points.append((point[0], float(point[1])))
            its = tuple(int(p[0]) for p in points)
            if any(i < 0 for i in its) or any(b <= a for a, b in zip(its, its[1:], strict=False)):
                raise ConfigError(key, f"schedule iterations must be >= 0 and strictly increasing, got {list(its)}")
            return cls._checked(its, tuple(p[1] for p in points), key)
        raise ConfigError(key, f"expected a number or a list of [iteration, value] points, got {value!r}")

    @classmethod
    def _checked(cls, its: tuple[int, ...], values: tuple[float, ...], key: str) -> Schedule:
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(key, f"schedule values must be finite, got {list(values)}")
        return cls(its, values)

    def __call__(self, iteration: int) -> float:
        i = bisect.bisect_right(self.iterations, iteration)
        if i == 0:
            return self.values[0]
        if i == len(self.iterations):
            return self.values[-1]
        x0, x1 = self.iterations[i - 1], self.iterations[i]
        y0, y1 = self.values[i - 1], self.values[i]
        return y0 + (y1 - y0) * (iteration - x0) / (x1 - x0)

    def at(
        self, iteration: Iterations, like: torch.Tensor, counts: Sequence[int] | None = None
    ) -> float | torch.Tensor:
        """The value at one shared iteration (a float), or at each unit's own iteration: a float when they all
        agree (no device copy), else a tensor like ``like`` with one value per unit, or per sample when ``counts``
        (samples per unit) is given."""
        if isinstance(iteration, int):
            return self(iteration)
        values = [self(i) for i in iteration]
        if all(v == values[0] for v in values):
            return values[0]
        if counts is not None:
            values = [v for v, n in zip(values, counts, strict=True) for _ in range(n)]
        return torch.tensor(values, dtype=like.dtype, device=like.device)

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """The values at the points; a piecewise-linear schedule's extremes are among them."""
        return self.values


def unit_iterations(iteration: Iterations, n_units: int) -> list[int]:
    """Each unit's iteration: a shared one repeated, or the units' own."""
    return [iteration] * n_units if isinstance(iteration, int) else list(iteration)
