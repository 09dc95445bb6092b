"""Reading images and masks, and cropping them consistently to the working resolution."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from peekaboo.data.configs import Crop
from peekaboo.errors import DataError

MAX_PIXELS_ENV = "PEEKABOO_MAX_IMAGE_PIXELS"
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # "I": how PIL may open a 16-bit grey PNG
_PIL_LIMIT = threading.Lock()


def require_directory(value: str | Path | None, key: str, hint: str) -> Path:
    """The directory the config ``key`` names; a DataError unless it exists (saying so when it is a file)."""
    if not value:
        raise DataError(f"{key} is empty; {hint}")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"{key}: {path} is a file, not a directory; {hint}")
    if not path.is_dir():
        raise DataError(f"{key}: directory {path} does not exist; {hint}")
    return path


def max_image_pixels() -> int:
    """The most pixels (width x height) we decode: PIL's decompression-bomb limit or ``$PEEKABOO_MAX_IMAGE_PIXELS``."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if value:
        try:
            return int(value)
        except ValueError:
            raise DataError(f"{MAX_PIXELS_ENV}={value!r} is not a whole number of pixels") from None
    return 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)


def load_image(path: str | Path, what: str, kind: str = "image") -> Image.Image:
    """Open, size-check, decode and upright (EXIF orientation) an image file; every failure is one ``DataError``
    naming ``what`` (the item or key) and the file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what}: {kind} {path} is a directory, not an image file")
    limit = max_image_pixels()
    try:
        with _PIL_LIMIT, warnings.catch_warnings():  # our limit replaces PIL's global one for this open
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                image = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        with image:
            if image.width * image.height > limit:
                raise DataError(
                    f"{what}: {kind} {path} is {image.width}x{image.height} = {image.width * image.height} pixels, "
                    f"more than the limit of {limit} (a decompression bomb?); if you trust the file, raise the limit "
                    f"with the environment variable {MAX_PIXELS_ENV}=<pixels>"
                )
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError as err:
        raise DataError(f"{what}: {kind} file {path} does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(f"{what}: cannot read {kind} {path} ({type(err).__name__}: {err})") from err


def rgb_array(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> (H, W, 3) uint8; 16-bit grey is scaled from [0, 65535], float from [0, 1]."""
    if image.mode in SIXTEEN_BIT or image.mode == "F":
        scale = 1.0 if image.mode == "F" else 65535.0
        grey = np.clip(np.asarray(image, dtype=np.float64) / scale, 0, 1)
        return np.repeat((grey * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def read_rgb(path: str | Path, what: str) -> np.ndarray:
    """Any PIL-readable image (any mode, EXIF orientation applied) -> (H, W, 3) uint8; ``what`` names the item."""
    return rgb_array(load_image(path, what, "image"))


def read_mask(path: str | Path, what: str) -> np.ndarray:
    """A mask as (H, W) uint8 values, EXIF orientation applied (palette indices kept as indices). 16-bit masks keep
    small values (labels) and are scaled from [0, 65535] when they use the 16-bit range."""
    image = load_image(path, what, "mask")
    if image.mode in SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.int64)
        if values.max(initial=0) > 255:
            values = (values.clip(0, 65535) * 255 + 32767) // 65535
        return values.clip(0, 255).astype(np.uint8)
    if image.mode not in ("L", "P", "1"):
        image = image.convert("L")
    return np.asarray(image).astype(np.uint8)


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


def to_working(image: np.ndarray, resolution: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, R, R) float32 in [0, 1], antialiased bicubic resize."""
    resized = Image.fromarray(image).resize((resolution, resolution), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1).clamp(0, 1).contiguous()


def check_prompts(prompts: object, what: str) -> list[str]:
    """A prompt or a list of prompts -> non-empty list of non-empty strings."""
    items = [prompts] if isinstance(prompts, str) else list(prompts) if isinstance(prompts, list | tuple) else None
    if not items or not all(isinstance(p, str) and p.strip() for p in items):
        raise DataError(f"{what}: prompt must be a non-empty string or list of non-empty strings, got {prompts!r}")
    return [p.strip() for p in items]
