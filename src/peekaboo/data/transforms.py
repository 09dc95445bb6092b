"""Reading images and masks, and cropping them consistently to the working resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from peekaboo.data.configs import Crop, Resample
from peekaboo.errors import DataError

ORIGINAL_SIDE = 512  # the authors square every image to 512x512 before the segmenter resizes it to 256


def upright_rgb(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> (H, W, 3) uint8, turned as its EXIF orientation says (as viewers show it)."""
    return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def read_rgb(path: str | Path, what: str, upright: bool = False) -> np.ndarray:
    """Any PIL-readable image (any mode) -> (H, W, 3) uint8; ``what`` names the item in the error.

    ``upright``: apply the EXIF orientation (users' photos, shown as viewers show them); benchmark datasets keep
    the stored pixels, which their annotations refer to."""
    try:
        with Image.open(path) as image:
            return upright_rgb(image) if upright else np.asarray(image.convert("RGB"))
    except FileNotFoundError as err:
        raise DataError(f"{what}: image file {path} does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{what}: cannot read image {path} ({type(err).__name__}: {err})") from err


def read_mask(path: str | Path, what: str, upright: bool = False) -> np.ndarray:
    """A mask PNG as (H, W) uint8 values (palette indices kept as indices); ``upright`` as ``read_rgb``."""
    try:
        with Image.open(path) as image:
            if upright:
                image = ImageOps.exif_transpose(image)
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


def as_rgb(image: str | Path | Image.Image | np.ndarray, what: str = "image") -> np.ndarray:
    """A path, PIL image or array ((H, W[, 1|3|4]) uint8, or float in [0, 1]) -> (H, W, 3) uint8."""
    if isinstance(image, str | Path):
        return read_rgb(Path(image).expanduser(), what, upright=True)
    if isinstance(image, Image.Image):
        return upright_rgb(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (1, 4):
        array = array[..., :3] if array.shape[2] == 4 else array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise DataError(f"{what}: expected an (H, W, 3) image array, got shape {tuple(np.asarray(image).shape)}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating) or array.dtype == bool:
        values = array.astype(np.float32)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise DataError(f"{what}: a float image must lie in [0, 1] (got [{values.min():g}, {values.max():g}])")
        return (values * 255 + 0.5).astype(np.uint8)
    raise DataError(f"{what}: expected a uint8 or float image array, got dtype {array.dtype}")


def uncrop(values: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map of the working crop -> (H, W) = ``size`` in the original image's frame: resized (bilinear) onto
    ``box`` (top, left, bottom, right), 0 outside it. The inverse of ``crop_box`` + ``to_working``."""
    top, left, bottom, right = box
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) != (bottom - top, right - left):
        tensor = F.interpolate(tensor, size=(bottom - top, right - left), mode="bilinear")
    out = np.zeros(size, np.float32)
    out[top:bottom, left:right] = tensor[0, 0].numpy()
    return out


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
