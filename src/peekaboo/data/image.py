"""``data=image``: one image file and its prompt(s), with an optional ground-truth mask."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from torch.utils.data import Dataset

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.data.configs import Crop, Resample
from peekaboo.data.digest import digest, file_digest
from peekaboo.data.transforms import check_prompts, crop_box, read_mask, read_rgb, to_working
from peekaboo.errors import DataError


def safe_id(text: str) -> str:
    """A filesystem-safe item id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "item"


def binary_mask(values: np.ndarray, void: bool) -> np.ndarray:
    """Mask values -> 0/1 (and 255 kept as void when ``void``)."""
    out = (values > 0).astype(np.uint8)
    if void:
        out[values == 255] = 255
    return out


def load_item(
    index: int,
    item_id: str,
    image_path: Path,
    prompts: Any,
    resolution: int,
    crop: Crop,
    mask_path: Path | None,
    void: bool,
    what: str,
    meta: dict | None = None,
    resample: Resample = Resample.original,
) -> Item:
    """Read, crop and resize one item; the ground truth is cropped identically at native resolution. Both are
    turned upright as their EXIF orientation says, so outputs in the original frame match what viewers show."""
    prompts = check_prompts(prompts, what)
    rgb = read_rgb(image_path, what)
    mask = None
    if mask_path is not None:
        raw = read_mask(mask_path, what)
        if raw.shape != rgb.shape[:2]:
            raise DataError(
                f"{what}: mask {mask_path} is {raw.shape[1]}x{raw.shape[0]} but image {image_path} is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; they must have the same size"
            )
        mask = binary_mask(raw, void)
    info = {"image": str(image_path), **({"mask": str(mask_path)} if mask_path is not None else {}), **(meta or {})}
    box = crop_box(rgb.shape[0], rgb.shape[1], crop)
    return crop_item(index, item_id, rgb, prompts, resolution, box, mask, info, resample)


def crop_item(
    index: int,
    item_id: str,
    rgb: np.ndarray,
    prompts: list[str],
    resolution: int,
    box: tuple[int, int, int, int],
    mask: np.ndarray | None,
    meta: dict,
    resample: Resample = Resample.original,
) -> Item:
    """An item from an (H, W, 3) uint8 image and its (H, W) 0/1/255 mask, cropped to ``box`` (top, left, bottom,
    right); the ground truth keeps its native resolution, the image is resized to the working resolution. The
    whole image stays with the item (``original``) for the outputs in its frame."""
    top, left, bottom, right = box
    display = np.ascontiguousarray(rgb[top:bottom, left:right])
    return Item(
        index=index,
        item_id=item_id,
        image=to_working(display, resolution, resample),
        prompts=prompts,
        mask=None if mask is None else np.ascontiguousarray(mask[top:bottom, left:right]),
        display=display,
        meta={**meta, "crop_box": [top, left, bottom, right], "image_size": list(rgb.shape[:2])},
        original=rgb,
    )


class ImageDataset(Dataset):
    """A single image: ``data.path``, ``data.prompt`` (a string or a list for several masks)."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        positive(cfg, "data.resolution")

    def __init__(
        self,
        path: str,
        prompt: Any,
        resolution: int = 256,
        crop: Crop | str = Crop.center,
        mask: str | None = None,
        void: bool = False,
        item_id: str | None = None,
        resample: Resample | str = Resample.original,
    ):
        if not path:
            raise DataError("data.path is empty: give the image to segment, e.g. data.path=dog.jpg")
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise DataError(
                f"data.path: {self.path} is a directory; give one image file, or use data=folder "
                f"data.root={self.path} for a directory of images with an index"
            )
        if not self.path.is_file():
            raise DataError(f"data.path: image file {self.path} does not exist")
        self.mask = Path(mask).expanduser() if mask else None
        if self.mask is not None and not self.mask.is_file():
            if self.mask.is_dir():
                raise DataError(f"data.mask: {self.mask} is a directory, not a mask file")
            raise DataError(f"data.mask: mask file {self.mask} does not exist")
        self.prompts = check_prompts(prompt, "data.prompt")
        self.resolution, self.crop, self.void = resolution, Crop(getattr(crop, "value", crop)), void
        self.item_id = safe_id(item_id or self.path.stem)
        self.resample = Resample(getattr(resample, "value", resample))

    @property
    def item_ids(self) -> list[str]:
        return [self.item_id]

    def __len__(self) -> int:
        return 1

    def input_digest(self, index: int) -> str:
        return digest(file_digest(self.path), file_digest(self.mask), self.prompts, self.item_id)

    def __getitem__(self, index: int) -> Item:
        return load_item(
            index,
            self.item_id,
            self.path,
            self.prompts,
            self.resolution,
            self.crop,
            self.mask,
            self.void,
            f"item '{self.item_id}'",
            resample=self.resample,
        )
