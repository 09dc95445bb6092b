"""The item every dataset yields and the collate function that keeps items as a list."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from peekaboo.errors import DataError


@dataclass
class Item:
    """One segmentation (or generation) problem.

    index:    position in the full, unfiltered dataset; the item's seed is ``cfg.seed + index`` so results
              do not depend on device count or resumption, nor on batch size beyond float rounding.
    item_id:  stable, filesystem-safe name; outputs go to ``<run dir>/items/<item_id>/``.
    image:    (3, R, R) float32 in [0, 1] at the working resolution R (None for text-only generation).
    prompts:  one or more prompts; each gets its own mask.
    mask:     ground truth (H, W) uint8 at the scoring resolution: 0 background, 1 object, 255 void.
    display:  (H, W, 3) uint8 RGB at the ground truth's resolution, for overlays (None: use ``image``).
    meta:     free-form, JSON-serialisable facts copied into result.json (source file, crop box, ...).
    labels:   class label map (H, W) uint8 at the scoring resolution (0..C-1, 255 void) for unsupervised
              segmenters (method=diffseg), or None.
    original: the whole (H, W, 3) uint8 image that ``display`` was cropped from (meta["crop_box"]), for outputs
              in the user's frame; None when the working image is the whole picture (toy scenes, generation).
    digest:   digest of the item's inputs (``peekaboo.data.digest``), set by the data module; None: not checked.
    """

    index: int
    item_id: str
    image: torch.Tensor | None
    prompts: list[str]
    mask: np.ndarray | None = None
    display: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None
    original: np.ndarray | None = None
    digest: str | None = None


class ItemDataset(Protocol):
    """What the pipeline needs of a dataset: items by index and every item's id without loading anything."""

    item_ids: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Item: ...


def collate_items(items: list[Item]) -> list[Item]:
    """Keep a batch as a list: masks and display images differ in size between items."""
    return list(items)


def check_item_id(item_id: str, where: str) -> str:
    """``item_id`` itself when it is one plain path component (it names ``items/<item_id>/``), else a DataError
    naming ``where`` it came from: no separators, not ``.``/``..``, not empty."""
    text = str(item_id)
    if not text.strip() or text in (".", "..") or any(c in text for c in ("/", "\\", "\0")):
        raise DataError(
            f"{where}: {text!r} cannot name a file or directory (it must be one plain name: no '/', '\\', '..' "
            "and not empty)"
        )
    return text


def check_item_ids(item_ids: list[str], where: str) -> None:
    """Every id is a plain name and no two are equal (each item writes its own ``items/<item_id>/``)."""
    for item_id in item_ids:
        check_item_id(item_id, f"{where}: item id")
    duplicated = sorted(i for i, n in Counter(item_ids).items() if n > 1)
    if duplicated:
        raise DataError(f"{where}: item ids {duplicated[:5]} are not unique; each item needs its own output directory")
