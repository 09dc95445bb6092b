"""Scenes: what the engine optimises. A scene turns its learnable parts into composites to be scored.

The segmentation scene is Peekaboo itself: ``alpha * image + (1 - alpha) * background`` with a fresh solid
random colour per sample. Other tasks (RGBA generation, the foreground/background grid) are other scenes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from peekaboo.engine.random import UnitRandom
from peekaboo.params.parametrization import Parametrization
from peekaboo.tasks.configs import FinalAlpha


@dataclass
class Layers:
    """The parts of ``alpha * foreground + (1 - alpha) * background``, for guidance that blends them itself
    (latent-space compositing). ``foreground`` is fixed during the optimisation (the same tensor every
    iteration), so values derived from it may be computed once."""

    foreground: torch.Tensor  # (U, 3, H, W) in [0, 1], no gradient
    alpha: torch.Tensor  # (U, 1, H, W) in (0, 1)
    background: torch.Tensor  # (S, 3) solid colours in [0, 1], unit-major like the composites


@dataclass
class Composites:
    """One iteration's images to score, grouped unit-major: unit u owns ``counts[u]`` consecutive samples."""

    images: torch.Tensor  # (S, 3, H, W) in [0, 1]
    alpha: torch.Tensor | None  # (U, 1, H, W), penalised by lambda_alpha * sum
    snapshot: dict[str, torch.Tensor] = field(default_factory=dict)  # detached per-unit maps for timelapses
    layers: Layers | None = None  # set by scenes that are a single alpha blend over solid colours
    stats: dict[str, torch.Tensor] = field(default_factory=dict)  # detached (U,) statistics recorded every iteration


class Scene(nn.Module):
    """Base class: per-unit parameters, a fixed number of samples per unit and a final output."""

    counts: list[int]

    def unit_parameters(self, unit: int) -> list[nn.Parameter]:
        raise NotImplementedError

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """The optimizer's parameter groups: one per unit by default. Scenes whose parameters are shared by
        several units (the foreground/background grid) return their own, each parameter in exactly one group."""
        return [self.unit_parameters(unit) for unit in range(len(self.counts))]

    @classmethod
    def merge(cls, scenes: list[Scene]) -> Scene:
        """One scene over the units of several, sharing their parameters (continuous batching)."""
        raise NotImplementedError(f"{cls.__name__} cannot be merged: continuous batching needs Scene.merge")

    def forward(self, rng: UnitRandom) -> Composites:
        raise NotImplementedError

    @torch.no_grad()
    def outputs(self) -> dict[str, torch.Tensor]:
        """Final per-unit results after optimisation (e.g. {"alpha": (U, 1, H, W)})."""
        raise NotImplementedError


class SegmentationScene(Scene):
    """Peekaboo: fixed images, learnable alpha, ``n_backgrounds`` random solid colours per unit and iteration.

    ``final_alpha`` picks the returned alpha: the original returns the one its last iteration scored, computed
    before that iteration's optimizer step (``before_last_step``); ``after_last_step`` evaluates it once more."""

    def __init__(
        self,
        images: torch.Tensor,
        alpha: Parametrization,
        n_backgrounds: int = 1,
        final_alpha: FinalAlpha = FinalAlpha.before_last_step,
    ):
        super().__init__()
        self.register_buffer("images", images, persistent=False)  # (U, 3, H, W)
        self.alpha = alpha
        self.n_backgrounds = n_backgrounds
        self.counts = [n_backgrounds] * images.shape[0]
        self.final_alpha = FinalAlpha(getattr(final_alpha, "value", final_alpha))
        self.scored_alpha: torch.Tensor | None = None  # the last forward's alpha, detached

    def unit_parameters(self, unit: int) -> list[nn.Parameter]:
        return self.alpha.unit_parameters(unit)

    @classmethod
    def merge(cls, scenes: list[SegmentationScene]) -> SegmentationScene:
        alpha = Parametrization.merge([s.alpha for s in scenes])
        return cls(torch.cat([s.images for s in scenes]), alpha, scenes[0].n_backgrounds)

    def forward(self, rng: UnitRandom) -> Composites:
        alpha = self.alpha()  # (U, 1, H, W)
        self.scored_alpha = alpha.detach()
        u, _, h, w = alpha.shape
        background = rng.rand(self.counts, 3).view(u, self.n_backgrounds, 3, 1, 1)
        a = alpha.unsqueeze(1)
        composite = a * self.images.unsqueeze(1) + (1 - a) * background
        layers = Layers(self.images, alpha, background.view(-1, 3))
        return Composites(composite.reshape(-1, 3, h, w), alpha, {"alpha": alpha.detach()}, layers=layers)

    @torch.no_grad()
    def outputs(self) -> dict[str, torch.Tensor]:
        if self.final_alpha is FinalAlpha.before_last_step and self.scored_alpha is not None:
            return {"alpha": self.scored_alpha}
        return {"alpha": self.alpha()}


def unit_pixel_variance(images: torch.Tensor, n_units: int) -> torch.Tensor:
    """(U,) detached: the variance over pixels and channels of each composite, averaged over its unit's samples.

    ``images`` (S, C, H, W) is unit-major with the same number of samples per unit (S = U * n)."""
    return images.detach().flatten(1).var(1, correction=0).view(n_units, -1).mean(1)
