"""Schemas of the ``optimizer`` group: torch optimizers built per batch with one parameter group per unit."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING


@dataclass
class SGDConfig:
    """Plain SGD, no momentum: the original (lr 1.0 raster, 1e-5 Fourier, via ``param.lr``)."""

    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    _convert_: str = "all"
    name: str = "sgd"
    lr: float = MISSING
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    _convert_: str = "all"
    name: str = "adam"
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
