"""Schemas of the ``loss`` group: the guidance terms and the objective that sums them.

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from peekaboo.priors.configs import Precision


class Weighting(enum.Enum):
    sds = "sds"  # w(t) = 1 - alphas_cumprod[t] (DreamFusion, the original)
    uniform = "uniform"  # w(t) = 1


class Compositing(enum.Enum):
    pixel = "pixel"  # encode the pixel composite, with gradient through the VAE (the original)
    latent = "latent"  # blend image and colour latents with the pooled alpha: no VAE backward (approximation)


@dataclass
class SDSConfig:
    """Schema of ``loss.sds``: score distillation on the diffusion prior."""

    _target_: str = "peekaboo.guidance.sds.ScoreDistillation"
    _partial_: bool = True  # the objective makes it, with the prior
    guidance_scale: Any = 100.0  # schedule: number or [[iteration, value], ...]
    min_step: Any = 0.02  # schedule, fraction of the training timesteps (0.02 -> t >= 20)
    max_step: Any = 0.98  # schedule, fraction (0.98 -> t <= 980), inclusive
    weighting: Weighting = Weighting.sds
    grad_clip: float | None = None  # clamp each gradient element to [-c, c]; None = no clipping (the original)
    sample_posterior: bool = True  # latent_dist.sample() as the original; False uses the posterior mean
    resolution: int | None = None  # resize composites to this before encoding; None = the prior's native size
    composite: Compositing = Compositing.pixel  # latent: blend in latent space (an approximation, no VAE backward)
    colour_lattice: int = 5  # latent compositing: points per RGB axis of the colour -> latent lookup
    weight: float = 1.0  # multiplier of this term in the total loss


@dataclass
class ClipConfig:
    """Schema of ``loss.clip``: the CLIP logit of the composite and the prompt."""

    _target_: str = "peekaboo.guidance.clip.ClipGuidance"
    _partial_: bool = True  # the objective makes it, on its device

    path: str = "openai/clip-vit-base-patch32"  # hub id or local directory (as written by save_pretrained)
    revision: str | None = None
    cache_dir: str | None = None  # None: the Hugging Face cache
    local_files_only: bool = False  # also forced by HF_HUB_OFFLINE=1
    dtype: Precision = Precision.fp32  # compute dtype of the frozen CLIP
    clip_coef: Any = 500.0  # schedule; per-sample loss = -clip_coef * logit (the original's 500)
    tiny: bool = False  # use a tiny random CLIP built from configs under $PEEKABOO_CACHE (path is ignored)


@dataclass
class LossConfig:
    """Schema of the ``loss`` group: the alpha penalty and the guidance terms (a section naming its class with
    ``_target_`` is on, ``null`` is off)."""

    _target_: str = "peekaboo.guidance.objective.PeekabooObjective"
    name: str = "sds"
    lambda_alpha: Any = 0.05  # schedule; multiplies alpha.sum() (a sum over pixels, as the original)
    n_backgrounds: int = 1  # SDS samples (random backgrounds) per unit and iteration, summed
    sds: SDSConfig | None = field(default_factory=SDSConfig)
    clip: ClipConfig | None = None  # CLIP guidance (the paper's "CLIP" variant); None = off
