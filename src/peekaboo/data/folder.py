"""``data=folder``: a directory of images plus an index (CSV or JSON) of ``image,prompt[,mask]`` rows, or a plain
directory of images and one ``data.prompt`` for all of them.

CSV: a header row with at least ``image`` and ``prompt`` (several prompts separated by ``|``), optional
``mask`` and ``id``. JSON: a list of objects with the same keys (``prompt`` may be a list). Paths are
relative to ``data.root``. Any other column is copied into the item's ``meta`` (and so into result.json).
With ``data.prompt`` set the index is not read: every image file directly under ``root`` (any format PIL
opens, sorted by name) is an item with that prompt (or list of prompts).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from peekaboo.data.base import Item
from peekaboo.data.configs import Crop, Resample
from peekaboo.data.image import load_item, safe_id
from peekaboo.data.transforms import check_prompts
from peekaboo.errors import DataError

INDEX_KEYS = ("image", "prompt", "mask", "id")


def image_files(root: Path) -> list[Path]:
    """The image files directly under ``root`` (extensions PIL can open; hidden files skipped), sorted by name."""
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix.lower() in readable and not p.name.startswith(".")
    )


def plain_rows(root: Path, prompt: Any) -> list[dict[str, Any]]:
    """One row per image file under ``root``, each with ``prompt``."""
    check_prompts(prompt, "data.prompt")
    rows = [{"image": path.name, "prompt": prompt} for path in image_files(root)]
    if not rows:
        raise DataError(f"data.root: {root} holds no image files (data.prompt set: every image in it is an item)")
    return rows


def read_index(path: Path) -> list[dict[str, Any]]:
    """Rows of the index file, each with 'image', 'prompt' and optional 'mask'/'id'."""
    if not path.is_file():
        raise DataError(
            f"data.index: index file {path} does not exist (expected a CSV or JSON list of image,prompt[,mask] "
            "rows); or set data.prompt to segment every image of the folder with that prompt"
        )
    try:
        if path.suffix.lower() == ".json":
            rows = json.loads(path.read_text())
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise DataError(f"{path}: expected a JSON list of objects with keys image, prompt[, mask]")
        else:
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            for row in rows:
                if isinstance(row.get("prompt"), str) and "|" in row["prompt"]:
                    row["prompt"] = row["prompt"].split("|")
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse the index ({type(err).__name__}: {err})") from err
    if not rows:
        raise DataError(f"{path}: the index lists no items")
    for number, row in enumerate(rows):
        missing = [k for k in ("image", "prompt") if not row.get(k)]
        if missing:
            raise DataError(f"{path}: row {number + 1} has no {' or '.join(missing)} (columns: {sorted(row)})")
    return rows


class FolderDataset(Dataset):
    """Images listed by an index file under ``root`` (or, with ``prompt``, every image under it); ids are
    ``<row>_<image stem>`` unless an ``id`` is given."""

    def __init__(
        self,
        root: str,
        index: str = "index.csv",
        resolution: int = 256,
        crop: Crop | str = Crop.center,
        void: bool = False,
        resample: Resample | str = Resample.original,
        prompt: Any = None,
    ):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"data.root: directory {self.root} does not exist (it must contain the images and the "
                f"index file '{index}', or the images and data.prompt)"
            )
        self.rows = read_index(self.root / index) if prompt is None else plain_rows(self.root, prompt)
        self.resolution, self.crop, self.void = resolution, Crop(getattr(crop, "value", crop)), void
        self.resample = Resample(getattr(resample, "value", resample))
        self.item_ids = [
            safe_id(str(r.get("id") or f"{n:05d}_{Path(r['image']).stem}")) for n, r in enumerate(self.rows)
        ]
        if len(set(self.item_ids)) != len(self.item_ids):
            raise DataError(f"{self.root / index}: item ids are not unique; give each row a distinct 'id'")
        for n, row in enumerate(self.rows):
            check_prompts(row["prompt"], f"{self.root / index} row {n + 1}")
            for key in ("image", "mask"):
                if row.get(key) and not (self.root / row[key]).is_file():
                    raise DataError(
                        f"{self.root / index} row {n + 1}: {key} file {self.root / row[key]} does not exist"
                    )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Item:
        row = self.rows[index]
        mask = self.root / row["mask"] if row.get("mask") else None
        return load_item(
            index,
            self.item_ids[index],
            self.root / row["image"],
            row["prompt"],
            self.resolution,
            self.crop,
            mask,
            self.void,
            f"item '{self.item_ids[index]}'",
            {k: v for k, v in row.items() if k not in INDEX_KEYS and v not in (None, "")},
            self.resample,
        )
