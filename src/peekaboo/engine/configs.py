"""Schemas of the engine's settings (``schedule.stop``, ``schedule.converged``): torch-free, like every schema the
config store imports."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StopRule(enum.Enum):
    fixed = "fixed"  # every unit runs schedule.iterations (the paper)
    converged = "converged"  # a unit stops once its mask has settled (at most schedule.iterations)


class ChangeMetric(enum.Enum):
    mean_abs = "mean_abs"  # mean |alpha_now - alpha_then| over pixels
    iou = "iou"  # 1 - IoU(alpha_now > threshold, alpha_then > threshold)


@dataclass
class ConvergedConfig:
    """Schema of ``schedule.converged``: the settling criterion of ``schedule.stop=converged``."""

    metric: ChangeMetric = ChangeMetric.iou  # the binary mask settles long before soft alpha stops drifting
    window: int = 25  # compare with the mask this many iterations earlier (a multiple of ``every``)
    tolerance: float = 0.02  # settled when the change over the window is at most this
    min_iterations: int = 50  # never stop before this many iterations
    every: int = 25  # check at the unit's iterations every, 2 every, ... (one host read per check round)
    threshold: float = 0.5  # binarisation of metric=iou (task.threshold's default)
