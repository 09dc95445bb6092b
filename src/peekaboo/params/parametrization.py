"""``sigmoid(bilateral(field()))``: the four mask parametrizations of the paper, and the RGBA image.

raster            sigmoid(P)
raster_bilateral  sigmoid(bilateral(P)) (init_blur: P also blurred once at initialisation, the paper's App. C)
fourier           sigmoid(MLP(fourier features))
fourier_bilateral sigmoid(bilateral(MLP(fourier features)))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig
from torch import nn

from peekaboo.config.validate import positive
from peekaboo.errors import ConfigError
from peekaboo.params.bilateral import BilateralOperator, bilateral_weights
from peekaboo.params.configs import BilateralConfig
from peekaboo.params.fields import RasterField

FieldFactory = Callable[..., nn.Module]  # (generators, channels, height, width) -> a field (``param.field``)


class Parametrization(nn.Module):
    """U independent (C, H, W) fields in (0, 1), optionally bilateral-filtered with per-unit guide weights.

    generators:    one CPU generator per unit (initialisation).
    field:         makes the learnable field (``param.field``: ``RasterField``, ``FourierField`` or any class
                   with the same interface: ``n_units``, ``unit_parameters(unit)``, ``forward() -> logits``).
    guides:        (G, Cg, H, W) guide images (required with a bilateral filter); units index them with
                   ``guide_index`` so an image shared by several prompts has its weights computed once.
    """

    def __init__(
        self,
        generators: list[torch.Generator],
        channels: int,
        height: int,
        width: int,
        field: FieldFactory = RasterField,
        bilateral: BilateralConfig | dict | None = None,
        guides: torch.Tensor | None = None,
        guide_index: list[int] | None = None,
    ):
        super().__init__()
        bilateral = None if bilateral is None else _as(BilateralConfig, bilateral)
        self.field = field(generators, channels, height, width)
        self.bilateral: BilateralOperator | None = None
        if bilateral is not None:
            if guides is None:
                raise ValueError("a bilateral parametrization needs guide images")
            index = torch.as_tensor(guide_index if guide_index is not None else range(len(generators)))
            weights = bilateral_weights(guides, bilateral.kernel_size, bilateral.tolerance, bilateral.sigma)
            self.bilateral = BilateralOperator(weights.index_select(0, index.to(weights.device)), bilateral.iterations)
            set_values = getattr(self.field, "set_values", None)  # fields holding their values directly (raster)
            if bilateral.init_blur and set_values is not None:
                with torch.no_grad():
                    set_values(self._filter(self.field().to(weights.device)).to("cpu"))

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        bilateral = cfg.param.bilateral
        if bilateral is None:
            return
        if bilateral.kernel_size < 1 or bilateral.kernel_size % 2 == 0:
            raise ConfigError(
                "param.bilateral.kernel_size", f"must be a positive odd integer, got {bilateral.kernel_size}"
            )
        for key in ("tolerance", "sigma"):
            if bilateral[key] <= 0:
                raise ConfigError(f"param.bilateral.{key}", f"must be > 0, got {bilateral[key]}")
        positive(cfg, "param.bilateral.iterations", 0)

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
