"""Schemas of the ``param`` group: the mask / image parametrizations and their recipes.

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING


@dataclass
class RasterFieldConfig:
    """Schema of ``param/field=raster``: a learnable value per pixel and channel."""

    _target_: str = "peekaboo.params.fields.RasterField"
    _partial_: bool = True  # the parametrization calls it with the units' generators and the image size
    init: str = "randn"  # "randn" (the original) or "zeros"
    init_scale: float = 1.0


@dataclass
class FourierFieldConfig:
    """Schema of ``param/field=fourier``: Fourier features of the pixel grid and a per-pixel MLP."""

    _target_: str = "peekaboo.params.fields.FourierField"
    _partial_: bool = True
    num_features: int = 256
    hidden: int = 256
    hidden_layers: int = 3
    scale: float = 10.0
    batchnorm: bool = True


@dataclass
class BilateralConfig:
    kernel_size: int = 3
    tolerance: float = 0.08
    sigma: float = 5.0
    iterations: int = 40
    init_blur: bool = False  # blur the raster values once at initialisation (raster only; not in the authors' code)


@dataclass
class RecipeConfig:
    """The original code's companion settings of a parametrization, read by interpolation elsewhere:
    ``optimizer.lr`` (sgd: ``lr``, adam: ``adam_lr``), ``loss.lambda_alpha``, ``loss.sds.guidance_scale`` and,
    where a model's tuning sets them, the length of the paper-length schedules (``schedule=paper|refcoco|rgba|...``)
    and the trainer presets' ``batch_size``; ``None`` keeps the preset's own."""

    lr: float = 1.0
    adam_lr: float = 0.1
    lambda_alpha: float = 0.05
    guidance_scale: float = 100.0
    iterations: int | None = None
    timelapse_every: int | None = None
    batch_size: int | None = None


@dataclass
class ParamConfig:
    """Schema of the ``param`` group."""

    _target_: str = "peekaboo.params.parametrization.Parametrization"
    _partial_: bool = True
    name: str = "raster_bilateral"
    bilateral: BilateralConfig | None = None
    recipe: RecipeConfig = dataclasses.field(default_factory=RecipeConfig)
    field: Any = MISSING  # param/field: the learnable field's class (_target_) and settings
