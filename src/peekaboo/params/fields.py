"""Learnable fields over the pixel grid, one independent set of parameters per optimisation unit.

A field maps nothing to (U, C, H, W) unconstrained values (logits). Each unit (one image x one prompt)
owns its own parameter tensors, initialised from its own CPU generator, so a unit's result does not depend
on which other units share its batch. Forward stacks the units so downstream work is one batched program.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from peekaboo.config.validate import positive


class RasterField(nn.Module):
    """A learnable (C, H, W) tensor per unit: the "raster" (pixel) parametrization.

    init: "randn" (the original: P ~ N(0, init_scale^2)) or "zeros" (logits at 0, alpha 0.5 everywhere).
    """

    def __init__(
        self,
        generators: list[torch.Generator],
        channels: int,
        height: int,
        width: int,
        init: str = "randn",
        init_scale: float = 1.0,
    ):
        super().__init__()
        if init not in ("randn", "zeros"):
            raise ValueError(f"raster init must be 'randn' or 'zeros', got {init!r}")
        self.n_units = len(generators)
        self.values = nn.ParameterList(
            nn.Parameter(
                torch.randn(channels, height, width, generator=g) * init_scale
                if init == "randn"
                else torch.zeros(channels, height, width)
            )
            for g in generators
        )

    def unit_parameters(self, unit: int) -> list[nn.Parameter]:
        return [self.values[unit]]

    @classmethod
    def merge(cls, fields: list[RasterField]) -> RasterField:
        """The units of several fields as one (the same parameters, not copies): one batched forward."""
        merged = cls.__new__(cls)
        nn.Module.__init__(merged)
        merged.n_units = sum(f.n_units for f in fields)
        merged.values = nn.ParameterList(p for f in fields for p in f.values)
        return merged

    @torch.no_grad()
    def set_values(self, values: torch.Tensor) -> None:
        """Overwrite the raw values (U, C, H, W), e.g. with their initial bilateral blur."""
        for p, v in zip(self.values, values, strict=True):
            p.copy_(v)

    def forward(self) -> torch.Tensor:
        return torch.stack(list(self.values))


def _linear_init(generator: torch.Generator, fan_out: int, fan_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.Conv2d's default initialisation for a 1x1 convolution: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    weight = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
    bias = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
    return weight, bias


class FourierField(nn.Module):
    """Gaussian Fourier features of the pixel grid followed by a per-pixel MLP (1x1 convolutions).

    Per unit: ``B ~ N(0, scale^2)`` of shape (2, num_features/2); features ``[sin(2 pi uv B), cos(2 pi uv B)]``
    with uv in [0, 1); then ``hidden_layers`` x (linear, ReLU, BatchNorm in training mode) and a final
    linear layer to ``channels`` outputs (logits: the caller applies the sigmoid). BatchNorm normalises each
    unit's channels over that unit's pixels only, so units stay independent.
    """

    def __init__(
        self,
        generators: list[torch.Generator],
        channels: int,
        height: int,
        width: int,
        num_features: int = 256,
        hidden: int = 256,
        hidden_layers: int = 3,
        scale: float = 10.0,
        batchnorm: bool = True,
    ):
        super().__init__()
        if num_features % 2:
            raise ValueError(f"fourier num_features must be even, got {num_features}")
        self.height, self.width, self.batchnorm = height, width, batchnorm
        ys = torch.arange(height, dtype=torch.float32) / height
        xs = torch.arange(width, dtype=torch.float32) / width
        uv = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)  # (HW, 2)
        features, layers = [], []
        for g in generators:
            b = torch.randn(2, num_features // 2, generator=g) * scale
            proj = 2 * math.pi * uv @ b
            features.append(torch.cat([proj.sin(), proj.cos()], dim=1).T)  # (F, HW)
            sizes = [num_features] + [hidden] * hidden_layers + [channels]
            layers.append(
                [_linear_init(g, fan_out, fan_in) for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False)]
            )
        self.register_buffer("features", torch.stack(features), persistent=False)  # (U, F, HW)
        n_layers = len(layers[0])
        self.weights = nn.ParameterList(
            nn.Parameter(layers[u][i][0]) for u in range(len(generators)) for i in range(n_layers)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(layers[u][i][1]) for u in range(len(generators)) for i in range(n_layers)
        )
        self.norm_weights = nn.ParameterList(
            nn.Parameter(torch.ones(hidden))
            for _ in range(len(generators))
            for _ in range(hidden_layers if batchnorm else 0)
        )
        self.norm_biases = nn.ParameterList(
            nn.Parameter(torch.zeros(hidden))
            for _ in range(len(generators))
            for _ in range(hidden_layers if batchnorm else 0)
        )
        self.n_units, self.n_layers, self.hidden_layers = len(generators), n_layers, hidden_layers

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        for key in ("num_features", "hidden"):
            positive(cfg, f"param.field.{key}")
        positive(cfg, "param.field.hidden_layers", 0)

    def unit_parameters(self, unit: int) -> list[nn.Parameter]:
        lo, hi = unit * self.n_layers, (unit + 1) * self.n_layers
        params = list(self.weights[lo:hi]) + list(self.biases[lo:hi])
        if self.batchnorm:
            nlo, nhi = unit * self.hidden_layers, (unit + 1) * self.hidden_layers
            params += list(self.norm_weights[nlo:nhi]) + list(self.norm_biases[nlo:nhi])
        return params

    @classmethod
    def merge(cls, fields: list[FourierField]) -> FourierField:
        """The units of several fields as one (the same parameters, not copies): one batched forward."""
        first = fields[0]
        merged = cls.__new__(cls)
        nn.Module.__init__(merged)
        merged.height, merged.width, merged.batchnorm = first.height, first.width, first.batchnorm
        merged.n_layers, merged.hidden_layers = first.n_layers, first.hidden_layers
        merged.n_units = sum(f.n_units for f in fields)
        merged.register_buffer("features", torch.cat([f.features for f in fields]), persistent=False)
        for name in ("weights", "biases", "norm_weights", "norm_biases"):
            setattr(merged, name, nn.ParameterList(p for f in fields for p in getattr(f, name)))
        return merged

    def _layer(self, params: nn.ParameterList, layer: int, per_unit: int) -> torch.Tensor:
        return torch.stack([params[u * per_unit + layer] for u in range(self.n_units)])

    def forward(self) -> torch.Tensor:
        x = self.features
        for i in range(self.n_layers):
            weight = self._layer(self.weights, i, self.n_layers)
            bias = self._layer(self.biases, i, self.n_layers)
            x = torch.baddbmm(bias.unsqueeze(-1), weight, x)
            if i < self.n_layers - 1:
                x = F.relu(x)
                if self.batchnorm:
                    u, c, hw = x.shape
                    x = F.batch_norm(
                        x.reshape(1, u * c, hw),
                        None,
                        None,
                        self._layer(self.norm_weights, i, self.hidden_layers).reshape(-1),
                        self._layer(self.norm_biases, i, self.hidden_layers).reshape(-1),
                        training=True,
                    ).reshape(u, c, hw)
        return x.reshape(self.n_units, -1, self.height, self.width)
