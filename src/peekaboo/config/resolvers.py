"""OmegaConf resolvers our presets use, e.g. ``${mul:${param.recipe.lambda_alpha},${figure.lambda_scale}}``."""

from __future__ import annotations

import math
from importlib.resources import files

from omegaconf import OmegaConf


def package_path(package: str, *parts: str) -> str:
    """A file or folder shipped inside an installed package (``${package_path:peekaboo.toy.learned,weights}``):
    found wherever peekaboo lives, whatever the working directory."""
    return str(files(package).joinpath(*parts))


def register_resolvers() -> None:
    """Idempotent; registered with the config schemas (CLI, tests, and renderers reading saved configs)."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *factors: math.prod(float(f) for f in factors))
    if not OmegaConf.has_resolver("package_path"):
        OmegaConf.register_new_resolver("package_path", package_path)
