"""Diffusion priors: the frozen text-to-image models that score composites (Stable Diffusion, tiny, toy)."""

from peekaboo.priors.base import DiffusionPrior, LatentDistribution

__all__ = ["DiffusionPrior", "LatentDistribution"]
