"""Optional post-processing of the soft alpha before thresholding (``task/postprocess``).

The authors tuned a chain on RefCOCO and applied it before thresholding: standardise the map, Gaussian blur,
dilate (their previewer: ``(alpha - 0.55 * mean) / (2 * std)``, blur sigma 3, circular dilation of diameter 5,
threshold 0.2). Every step and size is a config value; the steps always run in this order: standardise, blur,
dilate, erode. Sizes are pixels of the working-resolution alpha, where the chain runs (the result is then resized
to the ground truth like an unprocessed alpha). scipy.ndimage does the filtering (``mirror`` borders, as OpenCV's
default); dilation and erosion are grey-level (max/min over a disk), so they also apply to soft maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PostprocessConfig:
    """Schema of ``task/postprocess``; the defaults (preset ``none``) leave the alpha untouched."""

    name: str = "none"
    standardize: bool = False  # alpha -> (alpha - mean_scale * mean) / (std_scale * std)
    mean_scale: float = 0.55
    std_scale: float = 2.0
    blur_sigma: float = 0.0  # Gaussian blur sigma in pixels; 0 disables
    dilate: int = 0  # grey dilation with a disk of this diameter in pixels; 0 disables
    erode: int = 0  # grey erosion with a disk of this diameter, after the dilation; 0 disables
    threshold: float | None = None  # the threshold the chain was tuned with; replaces task.threshold when set

    @property
    def enabled(self) -> bool:
        return self.standardize or self.blur_sigma > 0 or self.dilate > 0 or self.erode > 0

    def __call__(self, alpha: np.ndarray) -> np.ndarray:
        """The post-processed (H, W) map (float64; not clipped to [0, 1] when standardised)."""
        from scipy import ndimage

        out = np.asarray(alpha, dtype=np.float64)
        if self.standardize:
            out = (out - self.mean_scale * out.mean()) / (self.std_scale * max(float(out.std()), 1e-12))
        if self.blur_sigma > 0:
            out = ndimage.gaussian_filter(out, self.blur_sigma, mode="mirror", truncate=4.0)
        if self.dilate > 0:
            out = ndimage.grey_dilation(out, footprint=disk(self.dilate), mode="mirror")
        if self.erode > 0:
            out = ndimage.grey_erosion(out, footprint=disk(self.erode), mode="mirror")
        return out


def disk(diameter: int) -> np.ndarray:
    """A boolean disk footprint: the pixels of a ``diameter`` x ``diameter`` square within diameter/2 of its centre."""
    radius = diameter / 2
    offsets = np.arange(diameter) - (diameter - 1) / 2
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2
