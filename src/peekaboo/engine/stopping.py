"""When a unit's optimisation stops: after ``schedule.iterations`` (the paper), or once its mask has settled.

``schedule.stop=converged`` compares a unit's mask with the one it had ``window`` iterations earlier, at its own
iterations ``every, 2 every, ...`` (never its neighbours'), and stops it once the change is at most ``tolerance``
(and at least ``min_iterations`` have run); ``schedule.iterations`` stays the maximum. The change is the mean
absolute change of alpha (``metric=mean_abs``) or one minus the IoU of the masks at the task's threshold
(``metric=iou``). The decision needs the change on the host: one read per check round, not per iteration.
"""

from __future__ import annotations

import enum

import torch

from peekaboo.engine.configs import ChangeMetric, ConvergedConfig


class StopReason(enum.Enum):
    iterations = "iterations"  # reached schedule.iterations
    converged = "converged"  # the mask settled first


class ConvergenceCriterion:
    """Keeps each unit's masks at its check iterations and decides, per unit, whether it has settled."""

    def __init__(self, **settings):
        """``settings``: fields of ``ConvergedConfig`` (its defaults for the others)."""
        config = ConvergedConfig(**settings)
        self.metric = ChangeMetric(getattr(config.metric, "value", config.metric))
        self.window, self.tolerance, self.min_iterations = config.window, config.tolerance, config.min_iterations
        self.every, self.threshold = config.every, config.threshold

    def due(self, iteration: int) -> bool:
        """Whether a unit that has run ``iteration`` steps is checked now (its mask is then recorded)."""
        return iteration % self.every == 0

    def can_stop(self, iteration: int) -> bool:
        return iteration >= max(self.min_iterations, self.window)

    def change(self, now: torch.Tensor, then: torch.Tensor) -> torch.Tensor:
        """The change between two masks (C, H, W) of one unit, a 0-d tensor on their device (no host read)."""
        if self.metric is ChangeMetric.mean_abs:
            return (now - then).abs().mean()
        a, b = now > self.threshold, then > self.threshold
        union = (a | b).sum()
        iou = torch.where(union > 0, (a & b).sum() / union.clamp(min=1), 1.0)  # two empty masks agree
        return 1 - iou

    def kept(self, iteration: int) -> int:
        """The oldest check iteration a unit at ``iteration`` still needs."""
        return iteration - self.window
