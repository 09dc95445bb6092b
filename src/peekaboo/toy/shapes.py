"""Soft-edged shape rasterization and the template grid, shared by the prior and the scene generator.

Both sides call the same code, so a scene object drawn at a grid point is exactly one of the prior's
templates: the toy world's ground truth lies inside the prior's support.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Template sizes as fractions of the image side (10, 12, 14, 16 px at 32x32): scene objects are 30-50 %.
DEFAULT_SIZE_FRACTIONS: tuple[float, ...] = (0.3125, 0.375, 0.4375, 0.5)
DEFAULT_STRIDE_FRACTION = 1 / 16  # 2 px at 32x32, 4 px at 64x64: the same K at both resolutions.
EDGE_MARGIN = 1.0  # pixels kept between a shape's bounding box and the image border


def signed_distance(
    shape: str, cx: np.ndarray, cy: np.ndarray, size: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Signed distance in pixels (negative inside) of pixel centres to K shapes -> (K, H, W) float64.

    ``size`` is the side of the shape's square bounding box centred at (cx, cy): a circle's diameter, a
    square's side, an upward isosceles triangle's base and height. Polygons use the maximum of their
    edges' half-plane distances, which is exact near the edges, where the soft mask lives.
    """
    cx, cy, half = (np.asarray(v, dtype=np.float64)[:, None, None] for v in (cx, cy, np.asarray(size) / 2))
    dx = np.arange(width, dtype=np.float64)[None, None, :] + 0.5 - cx
    dy = np.arange(height, dtype=np.float64)[None, :, None] + 0.5 - cy
    if shape == "circle":
        return np.sqrt(dx**2 + dy**2) - half
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - half
    if shape == "triangle":
        # Apex (0, -half) and base corners (+-half, half) from the centre; slanted normals (+-2, -1)/sqrt(5).
        base = dy - half
        slant = (2 * np.abs(dx) - dy - half) / np.sqrt(5.0)
        return np.maximum(base, slant)
    raise ValueError(f"unknown shape {shape!r}; expected circle, square or triangle")


def rasterize(shape: str, cx: np.ndarray, cy: np.ndarray, size: np.ndarray, height: int, width: int) -> np.ndarray:
    """Soft masks (K, H, W) float32 in [0, 1]: a 1-pixel linear edge from the clamped signed distance.

    A pixel is inside (mask >= 0.5) exactly when its centre is inside the shape.
    """
    sd = signed_distance(shape, cx, cy, size, height, width)
    return np.clip(0.5 - sd, 0.0, 1.0).astype(np.float32)


def template_grid(image_size: int, sizes: Sequence[float] | None = None, stride: float | None = None) -> np.ndarray:
    """Template placements (K, 3) as rows (cx, cy, size) in pixels: every size at a centred grid of positions.

    Defaults: sizes 31-50 % of the side, stride side/16, whole shape inside the image with a 1 px margin;
    at 32x32 that is 121 + 100 + 81 + 64 = 366 placements per shape.
    """
    sizes = [f * image_size for f in DEFAULT_SIZE_FRACTIONS] if sizes is None else list(sizes)
    stride = DEFAULT_STRIDE_FRACTION * image_size if stride is None else stride
    rows = []
    for size in sizes:
        lo, hi = size / 2 + EDGE_MARGIN, image_size - size / 2 - EDGE_MARGIN
        if hi < lo:
            raise ValueError(f"template size {size} does not fit an image of side {image_size}")
        n = int(np.floor((hi - lo) / stride + 1e-9)) + 1
        centres = (lo + hi) / 2 + stride * (np.arange(n) - (n - 1) / 2)
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        rows.append(np.stack([cx.ravel(), cy.ravel(), np.full(n * n, float(size))], axis=1))
    return np.concatenate(rows, axis=0)
