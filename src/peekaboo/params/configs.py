"""Schemas of the ``param`` group: the mask / image parametrizations and their recipes.

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class FieldKind(enum.Enum):
    raster = "raster"
    fourier = "fourier"


@dataclass
class RasterConfig:
    init: str = "randn"  # "randn" (the original) or "zeros"
    init_scale: float = 1.0


@dataclass
class FourierConfig:
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
    init_blur: bool = True  # blur the raster values once at initialisation (raster only)


@dataclass
class RecipeConfig:
    """The original code's companion settings of a parametrization, read by interpolation elsewhere:
    ``optimizer.lr`` (sgd: ``lr``, adam: ``adam_lr``), ``loss.lambda_alpha``, ``loss.sds.guidance_scale`` and,
    where a model's tuning sets them, the length of the paper-length schedules (``schedule=paper|refcoco|rgba|...``);
    ``None`` keeps the schedule preset's own."""

    lr: float = 1.0
    adam_lr: float = 0.1
    lambda_alpha: float = 0.05
    guidance_scale: float = 100.0
    iterations: int | None = None
    timelapse_every: int | None = None


@dataclass
class ParamConfig:
    """Schema of the ``param`` group."""

    _target_: str = "peekaboo.params.parametrization.Parametrization"
    _partial_: bool = True
    name: str = "raster_bilateral"
    kind: FieldKind = FieldKind.raster  # raster | fourier
    raster: RasterConfig = field(default_factory=RasterConfig)
    fourier: FourierConfig = field(default_factory=FourierConfig)
    bilateral: BilateralConfig | None = None
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
