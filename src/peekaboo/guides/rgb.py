"""Guide maps for the bilateral filter: what "similar pixels" means (RGB here; depth in ``peekaboo.guides.depth``)."""

from __future__ import annotations

import torch

from peekaboo.data.base import Item


class RGBGuide:
    """The image itself (in [0, 1]) times ``rgb_scale``: the original's guide."""

    def __init__(self, rgb_scale: float = 1.0):
        self.rgb_scale = rgb_scale

    def setup(self, device: torch.device) -> None:
        """Load whatever the guide needs (nothing for RGB)."""

    def __call__(self, images: torch.Tensor, items: list[Item]) -> torch.Tensor:
        """images (G, 3, H, W) in [0, 1] -> guides (G, C, H, W)."""
        return images * self.rgb_scale
