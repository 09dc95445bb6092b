"""``sigmoid(bilateral(field()))``: the four mask parametrizations of the paper, and the RGBA image.

raster            sigmoid(P)
raster_bilateral  sigmoid(bilateral(P)), P blurred once at initialisation
fourier           sigmoid(MLP(fourier features))
fourier_bilateral sigmoid(bilateral(MLP(fourier features)))
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch
from torch import nn

from peekaboo.params.bilateral import BilateralOperator, bilateral_weights
from peekaboo.params.fields import FourierField, RasterField


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
    ``optimizer.lr`` (sgd: ``lr``, adam: ``adam_lr``), ``loss.lambda_alpha`` and ``loss.sds.guidance_scale``."""

    lr: float = 1.0
    adam_lr: float = 0.1
    lambda_alpha: float = 0.05
    guidance_scale: float = 100.0


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


class Parametrization(nn.Module):
    """U independent (C, H, W) fields in (0, 1), optionally bilateral-filtered with per-unit guide weights.

    generators:    one CPU generator per unit (initialisation).
    guides:        (G, Cg, H, W) guide images (required with a bilateral filter); units index them with
                   ``guide_index`` so an image shared by several prompts has its weights computed once.
    """

    def __init__(
        self,
        generators: list[torch.Generator],
        channels: int,
        height: int,
        width: int,
        kind: FieldKind | str = FieldKind.raster,
        raster: RasterConfig | dict | None = None,
        fourier: FourierConfig | dict | None = None,
        bilateral: BilateralConfig | dict | None = None,
        guides: torch.Tensor | None = None,
        guide_index: list[int] | None = None,
    ):
        super().__init__()
        kind = FieldKind(getattr(kind, "value", kind))
        raster = _as(RasterConfig, raster)
        fourier = _as(FourierConfig, fourier)
        bilateral = None if bilateral is None else _as(BilateralConfig, bilateral)
        if kind is FieldKind.raster:
            self.field = RasterField(generators, channels, height, width, raster.init, raster.init_scale)
        else:
            self.field = FourierField(
                generators,
                channels,
                height,
                width,
                fourier.num_features,
                fourier.hidden,
                fourier.hidden_layers,
                fourier.scale,
                fourier.batchnorm,
            )
        self.bilateral: BilateralOperator | None = None
        if bilateral is not None:
            if guides is None:
                raise ValueError("a bilateral parametrization needs guide images")
            index = torch.as_tensor(guide_index if guide_index is not None else range(len(generators)))
            weights = bilateral_weights(guides, bilateral.kernel_size, bilateral.tolerance, bilateral.sigma)
            self.bilateral = BilateralOperator(weights.index_select(0, index.to(weights.device)), bilateral.iterations)
            if bilateral.init_blur and isinstance(self.field, RasterField):
                with torch.no_grad():
                    self.field.set_values(self._filter(self.field().to(weights.device)).to("cpu"))

    @classmethod
    def merge(cls, parts: list[Parametrization]) -> Parametrization:
        """The units of several parametrizations of one kind as one, sharing their parameters (continuous
        batching: the slots' masks in one batched forward while each unit keeps its own optimizer)."""
        merged = cls.__new__(cls)
        nn.Module.__init__(merged)
        merged.field = type(parts[0].field).merge([p.field for p in parts])
        merged.bilateral = None if parts[0].bilateral is None else BilateralOperator.merge([p.bilateral for p in parts])
        return merged

    def _filter(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self.bilateral is None else self.bilateral(logits)

    @property
    def n_units(self) -> int:
        return self.field.n_units

    def unit_parameters(self, unit: int) -> list[nn.Parameter]:
        return self.field.unit_parameters(unit)

    def logits(self) -> torch.Tensor:
        """Pre-sigmoid values (U, C, H, W), after the bilateral filter."""
        return self._filter(self.field())

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.logits())


def _as(cls, value):
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    return cls(**dict(value))
