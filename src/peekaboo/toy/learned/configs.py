"""Schema of ``conf/train_prior.yaml`` (``make train-prior``): data, architecture, the two stages, seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from peekaboo.toy.learned.architecture import Architecture
from peekaboo.toy.vocabulary import ToyDistribution


@dataclass
class TrainingData(ToyDistribution):
    """The analytic prior's image distribution (``model=toy``'s parameters), the image size and the caption mix."""

    size: int = 32
    bare_shape_fraction: float = 0.2  # captions that name only the shape
    empty_fraction: float = 0.1  # empty captions: the unconditional branch of classifier-free guidance


@dataclass
class VAEStage:
    steps: int = 1500
    epochs: int = 3  # a reconstruction grid after each
    batch_size: int = 32
    lr: float = 2.0e-3
    warmup_steps: int = 75
    kl_weight: float = 1.0e-5  # per latent element, against the per-pixel squared error


@dataclass
class DiffusionStage:
    """UNet and text encoder, trained together on the frozen VAE's latents (epsilon prediction)."""

    steps: int = 2400
    epochs: int = 6  # a samples grid after each
    batch_size: int = 96
    lr: float = 1.5e-3
    warmup_steps: int = 50
    grid_steps: int = 25  # DDIM steps of the per-epoch samples grid
    guidance_scale: float = 7.5


@dataclass
class TrainPriorConfig:
    data: TrainingData = field(default_factory=TrainingData)
    architecture: Architecture = field(default_factory=Architecture)
    vae: VAEStage = field(default_factory=VAEStage)
    diffusion: DiffusionStage = field(default_factory=DiffusionStage)
    logger: Any = MISSING
    seed: int = 0
    threads: int = 2  # torch CPU threads
    output_dir: str = MISSING  # logs, grids and the saved pipeline (pipeline/)
    init: str | None = None  # a saved pipeline to continue from (its architecture is kept; vae.steps=0: its VAE)
    install: bool = False  # also copy the pipeline over the shipped weights (model=toy_sd)
