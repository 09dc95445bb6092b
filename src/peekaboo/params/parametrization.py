"""``sigmoid(bilateral(field()))``: the four mask parametrizations of the paper, and the RGBA image.

raster            sigmoid(P)
raster_bilateral  sigmoid(bilateral(P)), P blurred once at initialisation
fourier           sigmoid(MLP(fourier features))
fourier_bilateral sigmoid(bilateral(MLP(fourier features)))
"""

from __future__ import annotations

import torch
from torch import nn

from peekaboo.params.bilateral import BilateralOperator, bilateral_weights
from peekaboo.params.configs import BilateralConfig, FieldKind, FourierConfig, RasterConfig
from peekaboo.params.fields import FourierField, RasterField


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
