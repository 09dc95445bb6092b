"""Schemas of the ``task`` group (segment, rgba, fg_bg_grid).

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from peekaboo.evaluation.metrics import SWEEP_LEVELS
from peekaboo.evaluation.postprocess import PostprocessConfig


class FinalAlpha(enum.Enum):
    """Which alpha a segmentation returns after N optimizer steps."""

    before_last_step = "before_last_step"  # the original: the alpha of the last forward (N - 1 steps applied)
    after_last_step = "after_last_step"  # one more forward after the last step (N steps applied)


@dataclass
class SegmentTaskConfig:
    """Schema of ``task=segment``."""

    _target_: str = "peekaboo.tasks.segment.SegmentTask"
    name: str = "segment"
    threshold: float = 0.5  # mask.png = alpha > threshold; also the fixed threshold of the metrics
    score_thresholds: list[float] = field(default_factory=list)  # extra thresholds scored per item
    sweep_levels: int = SWEEP_LEVELS  # per-item counts at thresholds k/levels (best-threshold metrics); 0: off
    save_npy: bool = True
    original_frame: bool = True  # also alpha_full.png, mask_full.png, overlay_full.png at the input image's size
    rle: bool = False  # masks.json: every prompt's mask as COCO RLE (at the input image's size when known)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)  # before thresholding
    final_alpha: FinalAlpha = FinalAlpha.before_last_step  # the original's; after_last_step: one more forward


def original_backgrounds() -> dict[str, list[float]]:
    """The authors' five solid backgrounds."""
    names = ("black", "white", "red", "green", "blue")
    colours = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    return dict(zip(names, colours, strict=True))


@dataclass
class RGBATaskConfig:
    """Schema of ``task=rgba``."""

    _target_: str = "peekaboo.tasks.rgba.RGBATask"
    name: str = "rgba"
    size: int = 512  # side of the generated image (the preset follows the prior's resolution)
    backgrounds: dict[str, list[float]] = field(default_factory=original_backgrounds)  # name -> RGB in [0, 1]
    checker: int = 8  # squares per side of the checkerboard behind on_checkerboard.png and the timelapse
    transparent: bool = True  # false: an opaque RGB image (no alpha, no backgrounds), as the paper's Fig. 12-13


@dataclass
class FgBgGridTaskConfig:
    """Schema of ``task=fg_bg_grid``."""

    _target_: str = "peekaboo.tasks.fg_bg_grid.FgBgGridTask"
    name: str = "fg_bg_grid"
    size: int = 512  # side of every layer and cell (the preset follows the prior's resolution)
    timelapse_size: int = 128  # side of a cell in timelapse.gif; frames are kept on the device at this size
