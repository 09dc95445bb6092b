"""OmegaConf resolvers our presets use, e.g. ``${mul:${param.recipe.lambda_alpha},${figure.lambda_scale}}`` and
``${default:${param.recipe.iterations},300}`` (the recipe's value, or the preset's own where the recipe has none)."""

from __future__ import annotations

import math

from omegaconf import OmegaConf


def register_resolvers() -> None:
    """Idempotent; registered with the config schemas (CLI, tests, and renderers reading saved configs)."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *factors: math.prod(float(f) for f in factors))
    if not OmegaConf.has_resolver("default"):
        OmegaConf.register_new_resolver("default", lambda value, fallback: fallback if value is None else value)
