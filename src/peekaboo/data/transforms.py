"""Reading images and masks, and cropping them consistently to the working resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from peekaboo.data.configs import Crop, Resample
from peekaboo.errors import DataError

ORIGINAL_SIDE = 512  # the authors square every image to 512x512 before the segmenter resizes it to 256


def read_rgb(path: str | Path, what: str) -> np.ndarray:
    """Any PIL-readable image (any mode) -> (H, W, 3) uint8; ``what`` names the item in the error."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError as err:
        raise DataError(f"{what}: image file {path} does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{what}: cannot read image {path} ({type(err).__name__}: {err})") from err


def read_mask(path: str | Path, what: str) -> np.ndarray:
    """A mask PNG as (H, W) uint8 values (palette indices kept as indices)."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "1", "I", "I;16"):
                image = image.convert("L")
            return np.asarray(image).astype(np.int64).clip(0, 255).astype(np.uint8)
    except FileNotFoundError as err:
        raise DataError(f"{what}: mask file {path} does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{what}: cannot read mask {path} ({type(err).__name__}: {err})") from err


def crop_box(height: int, width: int, crop: Crop) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the region that becomes the working image."""
    if crop is Crop.center:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return top, left, top + side, left + side
    return 0, 0, height, width


def square_box(box: tuple[int, int, int, int], margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """The square crop around ``box`` (top, left, bottom, right; bottom/right exclusive) used by VOC-C and RefCOCO.

    Side = the box's longer side grown by ``margin`` of it on each side (``round(max(h, w) * (1 + 2 margin))``),
    capped at the image's shorter side; centred on the box, then shifted (never shrunk) to lie inside the image.
    """
    top, left, bottom, right = box
    side = min(round(max(bottom - top, right - left) * (1 + 2 * margin)), height, width)
    y0 = min(max(round((top + bottom - side) / 2), 0), height - side)
    x0 = min(max(round((left + right - side) / 2), 0), width - side)
    return y0, x0, y0 + side, x0 + side


def to_working(image: np.ndarray, resolution: int, resample: Resample = Resample.original) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, R, R) float32 in [0, 1]; ``resample`` chooses the authors' two steps or one bicubic."""
    if resample is Resample.bicubic:
        resized = Image.fromarray(image).resize((resolution, resolution), Image.BICUBIC)
        return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return original_resize(torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1), resolution)


def original_resize(image: torch.Tensor, resolution: int) -> torch.Tensor:
    """The authors' preprocessing of a square crop (3, H, W) in [0, 1], kept in float: ``make_image_square``
    resizes it to 512x512 with an anti-aliased filter, then ``PeekabooSegmenter`` resizes that bilinearly (no
    anti-aliasing, half-pixel centres: a 2x2 mean at 512 -> 256) to the working resolution."""
    square = F.interpolate(image[None], size=(ORIGINAL_SIDE, ORIGINAL_SIDE), mode="bilinear", antialias=True)
    working = F.interpolate(square, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return working[0].clamp_(0, 1).contiguous()


def check_prompts(prompts: object, what: str) -> list[str]:
    """A prompt or a list of prompts -> non-empty list of non-empty strings."""
    items = [prompts] if isinstance(prompts, str) else list(prompts) if isinstance(prompts, list | tuple) else None
    if not items or not all(isinstance(p, str) and p.strip() for p in items):
        raise DataError(f"{what}: prompt must be a non-empty string or list of non-empty strings, got {prompts!r}")
    return [p.strip() for p in items]
