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

from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import Dataset

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.data.configs import Crop, Resample
from peekaboo.data.digest import digest, file_digest
from peekaboo.data.image import load_item, safe_id
from peekaboo.data.transforms import check_prompts, require_directory
from peekaboo.errors import DataError

ROW_NAME = "_row"  # where a row came from ("file:line"), for messages; not copied into an item's meta
INDEX_KEYS = ("image", "prompt", "mask", "id", ROW_NAME)


def image_files(root: Path) -> list[Path]:
    """The image files directly under ``root`` (extensions PIL can open; hidden files skipped), sorted by name."""
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix.lower() in readable and not p.name.startswith(".")
    )


def plain_rows(root: Path, prompt: Any) -> list[dict[str, Any]]:
    """One row per image file under ``root``, each with ``prompt`` (and the file as where the row came from)."""
    check_prompts(prompt, "data.prompt")
    rows = [{"image": path.name, "prompt": prompt, ROW_NAME: str(path)} for path in image_files(root)]
    if not rows:
        raise DataError(f"data.root: {root} holds no image files (data.prompt set: every image in it is an item)")
    return rows


def read_index(path: Path) -> list[dict[str, Any]]:
    """Rows of the index file, each with 'image', 'prompt' and optional 'mask'/'id', and where it came from (for
    messages) under ``ROW_NAME``."""
    if path.is_dir():
        raise DataError(f"data.index: {path} is a directory; it must be the index file (CSV or JSON) inside data.root")
    if not path.is_file():
        raise DataError(
            f"data.index: index file {path} does not exist (expected a CSV or JSON list of image,prompt[,mask] "
            "rows); or set data.prompt to segment every image of the folder with that prompt"
        )
    try:
        if path.suffix.lower() == ".json":
            rows = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise DataError(f"{path}: expected a JSON list of objects with keys image, prompt[, mask]")
            names = [f"{path} row {n + 1}" for n in range(len(rows))]
        else:
            rows, names = read_csv_rows(path)
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse the index ({type(err).__name__}: {err})") from err
    if not rows:
        raise DataError(f"{path}: the index lists no items")
    for name, row in zip(names, rows, strict=True):
        missing = [k for k in ("image", "prompt") if not row.get(k)]
        if missing:
            raise DataError(f"{name} has no {' or '.join(missing)} (columns: {sorted(row)})")
        for key, kinds in (("image", str), ("mask", str), ("id", str | int)):
            if row.get(key) is not None and not isinstance(row[key], kinds):
                raise DataError(f"{name}: {key} must be {'a file name' if kinds is str else 'text'}, got {row[key]!r}")
        row[ROW_NAME] = name
    return rows


def read_csv_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a CSV index (a UTF-8 byte-order mark is allowed) and each row's ``file:line row N``; a row with
    more cells than the header has columns is an error naming it."""
    rows, names = [], []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            raise DataError(f"{path}:1: the header repeats the column(s) {duplicated}")
        for row in reader:
            name = f"{path}:{reader.line_num} row {len(rows) + 1}"
            extra = row.pop(None, None)
            if extra is not None:
                raise DataError(
                    f"{name}: {len(header) + len(extra)} cells but the header has {len(header)} columns "
                    f"({', '.join(header)}); quote cells that contain commas, or separate several prompts with '|'"
                )
            if isinstance(row.get("prompt"), str) and "|" in row["prompt"]:
                row["prompt"] = row["prompt"].split("|")
            rows.append(row)
            names.append(name)
    return rows, names


class FolderDataset(Dataset):
    """Images listed by an index file under ``root`` (or, with ``prompt``, every image under it); ids are
    ``<row>_<image stem>`` unless an ``id`` is given."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        positive(cfg, "data.resolution")

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
        self.root = require_directory(
            root, "data.root", f"it must contain the images and the index file '{index}', or the images and data.prompt"
        )
        self.rows = read_index(self.root / index) if prompt is None else plain_rows(self.root, prompt)
        self.resolution, self.crop, self.void = resolution, Crop(getattr(crop, "value", crop)), void
        self.resample = Resample(getattr(resample, "value", resample))
        self.item_ids = [
            safe_id(str(r.get("id") or f"{n:05d}_{Path(r['image']).stem}")) for n, r in enumerate(self.rows)
        ]
        if len(set(self.item_ids)) != len(self.item_ids):
            raise DataError(f"{self.root / index}: item ids are not unique; give each row a distinct 'id'")
        for row in self.rows:
            check_prompts(row["prompt"], row[ROW_NAME])
            for key in ("image", "mask"):
                if row.get(key) and not (self.root / row[key]).is_file():
                    state = "is a directory, not a file" if (self.root / row[key]).is_dir() else "does not exist"
                    raise DataError(f"{row[ROW_NAME]}: {key} file {self.root / row[key]} {state}")

    def __len__(self) -> int:
        return len(self.rows)

    def input_digest(self, index: int) -> str:
        """The index row (not where it lies in the file) and its image and mask bytes."""
        row = {k: v for k, v in self.rows[index].items() if k != ROW_NAME}
        mask = self.root / row["mask"] if row.get("mask") else None
        return digest(row, file_digest(self.root / row["image"]), file_digest(mask))

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
