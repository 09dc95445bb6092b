"""Encoding masks and images for humans: PNGs, overlays, timelapse GIFs, contact sheets."""

from __future__ import annotations

import colorsys
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

OVERLAY_COLOURS = np.array(
    [[255, 40, 40], [40, 160, 255], [60, 220, 60], [255, 200, 0], [200, 60, 255], [0, 220, 220], [255, 120, 0]],
    dtype=np.float32,
)


def to_uint8_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] or (H, W, 3) uint8 -> (H, W, 3) uint8."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return image
    array = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float32)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (3, 4):
        array = array.transpose(1, 2, 0)
    return (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)


def resize_map(values: np.ndarray | torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (H, W) float map to ``size`` = (height, width)."""
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) != tuple(size):
        tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    return tensor[0, 0].numpy()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def mask_png(values: np.ndarray) -> bytes:
    """(H, W) float in [0, 1] -> 8-bit grey PNG."""
    return png_bytes((np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8))


def overlay(image: np.ndarray, masks: list[np.ndarray], strength: float = 0.55) -> np.ndarray:
    """Tint ``image`` (H, W, 3) uint8 by soft masks (H, W) in [0, 1], one colour per mask."""
    out = image.astype(np.float32)
    for k, mask in enumerate(masks):
        a = (strength * np.clip(mask, 0, 1))[..., None]
        out = out * (1 - a) + OVERLAY_COLOURS[k % len(OVERLAY_COLOURS)] * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 120) -> bytes:
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def grid(rows: list[list[np.ndarray]], pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile equally sized (H, W, 3) uint8 tiles into one image, rows of columns."""
    h, w = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), fill, np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2)
    return canvas


def split_grid(canvas: np.ndarray, nrows: int, ncols: int, pad: int = 2) -> list[list[np.ndarray]]:
    """The tiles of a full ``grid`` canvas (every row has ``ncols`` tiles of equal size), rows of columns."""
    h, w = (canvas.shape[0] - pad) // nrows - pad, (canvas.shape[1] - pad) // ncols - pad
    return [
        [
            canvas[pad + i * (h + pad) : pad + i * (h + pad) + h, pad + j * (w + pad) : pad + j * (w + pad) + w]
            for j in range(ncols)
        ]
        for i in range(nrows)
    ]


def fit(tile: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W[, 3]) uint8 tile to size x size (keeps pixels crisp in sheets)."""
    return np.asarray(Image.fromarray(tile).resize((size, size), Image.NEAREST))


def label_palette(count: int) -> np.ndarray:
    """(count, 3) uint8 colours for segment ids, well separated in hue (golden-angle steps), deterministic."""
    ids = np.arange(count)
    hues = (ids * 0.618033988749895) % 1.0
    values = np.where((ids // 7) % 2 == 0, 0.95, 0.7)
    rgb = [colorsys.hsv_to_rgb(h, 0.75, v) for h, v in zip(hues, values, strict=True)]
    return (np.asarray(rgb, np.float64).reshape(count, 3) * 255).round().astype(np.uint8)


def label_png(labels: np.ndarray) -> bytes:
    """(H, W) segment ids < 256 -> a palette PNG: the pixel values are the ids, shown in colour."""
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"segment ids must lie in [0, 255] for a palette PNG, got [{labels.min()}, {labels.max()}]")
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(label_palette(256).tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def label_overlay(image: np.ndarray, labels: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Tint ``image`` (H, W, 3) uint8 with the colour of each pixel's segment id (H, W)."""
    colours = label_palette(int(labels.max()) + 1 if labels.size else 1)[labels].astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 - strength) + colours * strength + 0.5, 0, 255).astype(np.uint8)
