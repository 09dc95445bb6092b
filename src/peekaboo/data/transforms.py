"""Reading images and masks, and cropping them consistently to the working resolution."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from peekaboo.data.configs import Crop, Resample
from peekaboo.errors import DataError

ORIGINAL_SIDE = 512  # the authors square every image to 512x512 before the segmenter resizes it to 256
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


def load_image(path: str | Path, what: str, kind: str = "image", upright: bool = True) -> Image.Image:
    """Open, size-check and decode an image file, turned upright by its EXIF orientation unless ``upright`` is
    false; every failure is one ``DataError`` naming ``what`` (the item or key) and the file."""
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
            return ImageOps.exif_transpose(image) if upright else image.copy()
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


def read_rgb(path: str | Path, what: str, upright: bool = True) -> np.ndarray:
    """Any PIL-readable image (any mode) -> (H, W, 3) uint8; ``what`` names the item. ``upright``: apply the EXIF
    orientation (users' photos, as viewers show them); benchmark datasets pass false, since their annotations
    refer to the stored pixels."""
    return rgb_array(load_image(path, what, "image", upright))


def read_mask(path: str | Path, what: str, upright: bool = True) -> np.ndarray:
    """A mask as (H, W) uint8 values (palette indices kept as indices), ``upright`` as ``read_rgb``. 16-bit masks
    keep small values (labels) and are scaled from [0, 65535] when they use the 16-bit range."""
    image = load_image(path, what, "mask", upright)
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


def as_rgb(image: str | Path | Image.Image | np.ndarray, what: str = "image") -> np.ndarray:
    """A path, PIL image or array ((H, W[, 1|3|4]) uint8, or float in [0, 1]) -> (H, W, 3) uint8."""
    if isinstance(image, str | Path):
        return read_rgb(Path(image).expanduser(), what)
    if isinstance(image, Image.Image):
        return rgb_array(ImageOps.exif_transpose(image))
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
