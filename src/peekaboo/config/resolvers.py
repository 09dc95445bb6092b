"""OmegaConf resolvers our presets use, e.g. ``${mul:${param.recipe.lambda_alpha},${figure.lambda_scale}}`` and
``${default:${param.recipe.iterations},300}`` (the recipe's value, or the preset's own where the recipe has none)."""

from __future__ import annotations

import math
from importlib.resources import files

from omegaconf import OmegaConf


def run_label(model: str, loss: str, param: str, method_tag: str | None = None) -> str:
    """The default ``run_name``: what produced the masks. ``<model>_<param>`` for SDS, ``clip_<param>`` for CLIP
    alone (no diffusion prior is used), ``<model>_<loss>_<param>`` for other losses, ``<model>_<method>`` for
    baselines (``method.run_tag``), which use neither loss nor parametrization."""
    if method_tag:
        return f"{model}_{method_tag}"
    if loss == "sds":
        return f"{model}_{param}"
    if loss == "clip":
        return f"clip_{param}"
    return f"{model}_{loss}_{param}"


def package_path(package: str, *parts: str) -> str:
    """A file or folder shipped inside an installed package (``${package_path:peekaboo.toy.learned,weights}``):
    found wherever peekaboo lives, whatever the working directory."""
    return str(files(package).joinpath(*parts))


def register_resolvers() -> None:
    """Idempotent; registered with the config schemas (CLI, tests, and renderers reading saved configs)."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *factors: math.prod(float(f) for f in factors))
    if not OmegaConf.has_resolver("default"):
        OmegaConf.register_new_resolver("default", lambda value, fallback: fallback if value is None else value)
    if not OmegaConf.has_resolver("run_label"):
        OmegaConf.register_new_resolver("run_label", run_label)
    if not OmegaConf.has_resolver("package_path"):
        OmegaConf.register_new_resolver("package_path", package_path)
