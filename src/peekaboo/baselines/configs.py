"""Schemas of the ``method`` presets of the training-free baselines (attn_gmm, daam, diffseg).

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Posterior(enum.Enum):
    """Which latent of the VAE posterior is noised."""

    sample = "sample"  # the authors': latent_dist.sample(), one draw per unit from its seed
    mean = "mean"  # the posterior mean (as DiffSeg)


class GMMValues(enum.Enum):
    """What the 2-component Gaussian mixture is fitted to."""

    raw = "raw"  # the authors': the averaged attention probabilities
    minmax = "minmax"  # the map scaled to [0, 1] (sklearn's reg_covar, 1e-6, then weighs less)


class OrphanBorder(enum.Enum):
    """What the orphan filter does at the map's edge."""

    keep = "keep"  # the authors': the border (orphan_size // 2 pixels) keeps its thresholded values
    reflect = "reflect"  # the box mean reaches the border too, over reflected edges


class KLDtype(enum.Enum):
    """Precision of DiffSeg's first merging iteration's KL (docs/departures.md)."""

    fp32 = "fp32"  # ours: an underflowed probability contributes p log p = 0
    fp16 = "fp16"  # the original: maps with a probability that underflows in fp16 get NaN KLs and drop out


@dataclass
class AttentionGMMConfig:
    """Schema of ``method=attn_gmm``."""

    _target_: str = "peekaboo.baselines.attn_gmm.AttentionGMMModule"
    name: str = "attn_gmm"
    run_tag: str = "attn_gmm"  # names the output directory (run_name) instead of the unused param preset
    template: str = "a photo of a {}"  # {} = the item's prompt, inserted verbatim; all its tokens are averaged
    ddim_steps: int = 50  # the DDIM grid: t = k * (1000 // ddim_steps) + 1
    steps: int = 40  # the lowest ``steps`` timesteps of that grid (781, ..., 1)
    steps_per_call: int = 40  # noisings per unit in one UNet call (lower it to save memory)
    orphan_size: int = 3  # box-mean window of the orphan filter (1 disables it)
    orphan_threshold: float = 0.5
    posterior: Posterior = Posterior.sample
    gmm_values: GMMValues = GMMValues.raw
    orphan_border: OrphanBorder = OrphanBorder.keep


@dataclass
class DAAMConfig:
    """Schema of ``method=daam``."""

    _target_: str = "peekaboo.baselines.daam.DAAMModule"
    name: str = "daam"
    run_tag: str = "daam"  # names the output directory (run_name) instead of the unused param preset
    template: str = "{}"  # the caption; {} = the item's prompt, whose tokens' maps are averaged
    timesteps: list[int] = field(default_factory=lambda: [101, 301, 501, 701, 901])  # noising steps, one pass each
    threshold: float = 0.4  # mask = normalised heat map > threshold


@dataclass
class DiffSegConfig:
    """Schema of ``method=diffseg``."""

    _target_: str = "peekaboo.baselines.diffseg.DiffSegModule"
    name: str = "diffseg"
    run_tag: str = "diffseg"  # names the output directory (run_name) instead of the unused param preset
    timestep: int = 300  # of the 1000 training steps; the latent is not noised
    prompt: str = ""  # conditioning text (the original: empty)
    tau: float = 1.1  # KL merge threshold: 1.1 for COCO-Stuff-27, 0.9 for Cityscapes
    iterations: int = 3  # merging iterations (the first one is the anchor step)
    anchors: int = 16  # anchor grid points per side (capped at the aggregated resolution)
    upsample: int = 8  # label map = argmax of the proposals upsampled by this factor (64 x 8 = 512)
    num_classes: int | None = None  # classes of the ground-truth label maps (conf: data.num_classes when set)
    kl_first_iteration_dtype: KLDtype = KLDtype.fp32  # fp16: the original's NaN drop-outs (see the module doc)
