"""Schemas of the ``guidance_map`` group (RGB and depth guides of the bilateral filter).

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from peekaboo.priors.configs import Precision


@dataclass
class RGBGuideConfig:
    """Schema of ``guidance_map=rgb``."""

    _target_: str = "peekaboo.guides.rgb.RGBGuide"
    name: str = "rgb"
    rgb_scale: float = 1.0


class DepthNormalization(enum.Enum):
    divide = "divide"  # depth / divisor: the original (MiDaS output / 20)
    minmax = "minmax"  # per image to [0, 1]: independent of the model's output scale


@dataclass
class DepthGuideConfig:
    """Schema of ``guidance_map=depth``."""

    _target_: str = "peekaboo.guides.depth.DepthGuide"
    name: str = "depth"
    path: str = "Intel/dpt-large"  # hub id or local directory of a DPTForDepthEstimation checkpoint
    revision: str | None = None
    cache_dir: str | None = None  # None: the Hugging Face cache
    local_files_only: bool = False  # also forced by HF_HUB_OFFLINE=1
    dtype: Precision = Precision.fp32
    rgb_scale: float = 1.0
    depth_scale: float = 1.0  # not published in the paper
    normalize: DepthNormalization = DepthNormalization.divide
    divisor: float = 20.0  # normalize=divide: depth / divisor
    cache_maps: bool = True  # reuse depth maps computed by earlier runs
    maps_dir: str | None = None  # where depth maps are cached; None: $PEEKABOO_CACHE/depth
    tiny: bool = False  # a tiny random DPT built from configs (offline plumbing checks); path is ignored
