"""``data=refcoco``: RefCOCO, RefCOCO+ and RefCOCOg from the standard refer annotations and COCO train2014 images.

On disk (the layout of the refer toolkit, https://github.com/lichengunc/refer)::

    <root>/<dataset>/refs(<split_by>).p   pickled list of refs: ref_id, ann_id, image_id, split, sentences
    <root>/<dataset>/instances.json       COCO-style images, annotations (polygons or RLE) and categories
    <images>/COCO_train2014_<id>.jpg      the images (default <root>/images/mscoco/images/train2014)

One item per (referring sentence, ref) of the chosen split, in file order; its ground truth is the referred
annotation's mask decoded with pycocotools (polygons, compressed RLE and uncompressed RLE). ``crop=box`` crops a
square around the referred object's box (the rule of VOC-C: box + margin, squared, shifted inside the image),
as the authors evaluated on crops; ``crop=none`` resizes the whole image to the working square. Every
annotation is checked when the dataset is built, so a malformed one stops the run before any work, naming the
file, the annotation id and the ref id.

The refs file is a pickle, and unpickling can run code: it is read with ``RefsUnpickler``, which builds only
plain containers, strings and numbers (all a refer file holds) and refuses anything else, naming it.
``data.trust_pickle=true`` reads it with the plain ``pickle.load`` (only for files you trust). Ids and image
file names from the annotations must be plain names (see ``peekaboo.data.base.check_item_id``).
"""

from __future__ import annotations

import builtins
import json
import math
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset

from peekaboo.config.validate import positive
from peekaboo.data.base import Item, check_item_id
from peekaboo.data.configs import RefCrop, Resample
from peekaboo.data.digest import digest, file_digest
from peekaboo.data.image import crop_item
from peekaboo.data.transforms import check_prompts, read_rgb, require_directory, square_box
from peekaboo.errors import DataError

LAYOUT_HINT = (
    "data.root must be the refer data directory holding <dataset>/refs(<split_by>).p and <dataset>/instances.json "
    "(https://github.com/lichengunc/refer), and data.images the COCO train2014 image directory"
)


# The only classes a refs pickle may build: plain containers, strings and numbers.
PLAIN_TYPES = (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "str",
    "bytes",
    "bytearray",
    "int",
    "float",
    "complex",
    "bool",
)


class RefsUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any other class or function named by the file is refused, never imported."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in PLAIN_TYPES:
            return getattr(builtins, name)
        raise pickle.UnpicklingError(
            f"it names {module}.{name}, and a refs file holds only lists, dicts, strings and numbers; if you trust "
            "this file, set data.trust_pickle=true to unpickle it without restriction"
        )


def load_refs(path: Path, trust_pickle: bool = False) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as handle:  # Python 2 pickles of the refer toolkit: latin1 strings
            refs = (
                pickle.load(handle, encoding="latin1")
                if trust_pickle
                else RefsUnpickler(handle, encoding="latin1").load()
            )
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, IndexError) as err:
        raise DataError(f"{path}: cannot unpickle the refs ({type(err).__name__}: {err})") from err
    if not isinstance(refs, list):
        raise DataError(f"{path}: expected a pickled list of refs, got {type(refs).__name__}")
    required = ("ref_id", "ann_id", "image_id", "split", "sentences")
    for number, ref in enumerate(refs):
        missing = [k for k in required if not isinstance(ref, dict) or k not in ref]
        if missing:
            raise DataError(f"{path}: ref #{number} (ref_id {_get(ref, 'ref_id')}) has no {', '.join(missing)}")
        if not isinstance(ref["sentences"], list) or not all(isinstance(s, dict) for s in ref["sentences"]):
            raise DataError(f"{path}: ref #{number} (ref_id {ref['ref_id']!r}): sentences must be a list of dicts")
    return refs


def load_instances(path: Path) -> tuple[dict[int, dict], dict[int, dict], dict[int, str]]:
    """(annotations by id, images by id, category names by id) of a COCO-style instances file."""
    try:
        data = json.loads(path.read_text())
        annotations = {a["id"]: a for a in data["annotations"]}
        images = {i["id"]: i for i in data["images"]}
        categories = {c["id"]: c["name"] for c in data.get("categories", [])}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from err
    except (KeyError, TypeError) as err:
        raise DataError(f"{path}: expected COCO instances (images and annotations, each with an id): {err}") from err
    return annotations, images, categories


def check_segmentation(segmentation: Any, height: int, width: int) -> str | None:
    """What is wrong with a COCO segmentation for an image of this size (None when it is well formed)."""
    if isinstance(segmentation, list):
        if not segmentation:
            return "empty polygon list"
        for k, poly in enumerate(segmentation):
            if not isinstance(poly, list) or not all(isinstance(v, int | float) for v in poly):
                return f"polygon {k} is not a list of numbers"
            if len(poly) < 6 or len(poly) % 2:
                return f"polygon {k} has {len(poly)} coordinates (need an even number, at least 6)"
        return None
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [height, width]:
            return f"RLE size {segmentation['size']} differs from the image's [height, width] = [{height}, {width}]"
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                return f"uncompressed RLE counts must be non-negative integers summing to {height}x{width}"
            return None
        if isinstance(counts, str | bytes):
            return None
        return f"RLE counts of type {type(counts).__name__} (expected a list or a string)"
    return f"expected polygons (a list) or RLE (a dict with counts and size), got {type(segmentation).__name__}"


def decode_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 0/1 mask of a well-formed COCO segmentation (polygons, compressed or uncompressed RLE)."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.uint8)


class RefCOCODataset(Dataset):
    """Items of one split; ids are ``ref<ref_id>_sent<sent_id>``."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        positive(cfg, "data.resolution")
        positive(cfg, "data.margin", 0)

    def __init__(
        self,
        root: str,
        dataset: str = "refcoco",
        split_by: str = "unc",
        split: str = "val",
        images: str | None = None,
        crop: RefCrop | str = RefCrop.none,
        margin: float = 0.1,
        sentence: str = "sent",
        resolution: int = 256,
        resample: Resample | str = Resample.original,
        trust_pickle: bool = False,
    ):
        self.root = require_directory(root, "data.root", LAYOUT_HINT)
        self.refs_file = self.root / dataset / f"refs({split_by}).p"
        self.instances_file = self.root / dataset / "instances.json"
        for path in (self.refs_file, self.instances_file):
            if not path.is_file():
                raise DataError(
                    f"data.root: {path} does not exist (data.dataset={dataset}, data.split_by="
                    f"{split_by}); {LAYOUT_HINT}"
                )
        self.images = require_directory(
            images or self.root / "images" / "mscoco" / "images" / "train2014",
            "data.images",
            "it must hold the COCO train2014 images (COCO_train2014_<id>.jpg)",
        )
        if sentence not in ("sent", "raw"):
            raise DataError(f"data.sentence: must be 'sent' or 'raw', got {sentence!r}")
        self.crop, self.margin, self.resolution = RefCrop(getattr(crop, "value", crop)), margin, resolution
        self.resample = Resample(getattr(resample, "value", resample))
        refs = load_refs(self.refs_file, trust_pickle)
        chosen = [r for r in refs if r["split"] == split]
        if not chosen:
            available = ", ".join(f"{k} ({v} refs)" for k, v in sorted(Counter(r["split"] for r in refs).items()))
            raise DataError(f"data.split: {self.refs_file} has no ref in split {split!r}; its splits: {available}")
        self.annotations, self.image_info, self.categories = load_instances(self.instances_file)
        self.units: list[tuple[dict, dict]] = []  # (ref, sentence)
        for ref in chosen:
            self._check(ref)
            for sent in ref["sentences"]:
                check_prompts(_get(sent, sentence), f"{self.refs_file}: ref {ref['ref_id']} sentence")
                self.units.append((ref, sent))
        self.sentence = sentence
        self.item_ids = [
            check_item_id(f"ref{ref['ref_id']}_sent{_get(sent, 'sent_id')}", f"{self.refs_file}: ref {ref['ref_id']!r}")
            for ref, sent in self.units
        ]
        if len(set(self.item_ids)) != len(self.item_ids):
            raise DataError(f"{self.refs_file}: (ref_id, sent_id) pairs are not unique in split {split!r}")

    def _check(self, ref: dict) -> None:
        """Fail now, naming the file and entry, rather than after hours of optimisation."""
        where = f"ref {ref['ref_id']}"
        ann = self.annotations.get(ref["ann_id"])
        if ann is None:
            raise DataError(f"{self.instances_file}: annotation {ref['ann_id']} ({where}) does not exist")
        info = self.image_info.get(ann.get("image_id"))
        if info is None or "file_name" not in info or "height" not in info or "width" not in info:
            raise DataError(
                f"{self.instances_file}: image {ann.get('image_id')} of annotation {ann['id']} ({where}) "
                "is missing or has no file_name/height/width"
            )
        problem = check_segmentation(ann.get("segmentation"), info["height"], info["width"])
        if problem is None and self.crop is RefCrop.box:
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4 or bbox[2] <= 0 or bbox[3] <= 0:
                problem = f"bbox {bbox!r} is not [x, y, width, height] with a positive size"
        if problem is not None:
            raise DataError(
                f"{self.instances_file}: annotation {ann['id']} ({where}): malformed segmentation: {problem}"
            )
        if not ref["sentences"]:
            raise DataError(f"{self.refs_file}: {where} has no sentences")
        check_item_id(str(info["file_name"]), f"{self.instances_file}: image {info['id']} ({where}) file_name")
        if not (self.images / info["file_name"]).is_file():
            raise DataError(
                f"data.images: {self.images / info['file_name']} ({where}, image {info['id']}) does "
                "not exist; data.images must be the COCO train2014 image directory"
            )

    def __len__(self) -> int:
        return len(self.units)

    def input_digest(self, index: int) -> str:
        """The ref (with its sentence), the referred annotation, its image's record and the image bytes."""
        ref, sent = self.units[index]
        ann = self.annotations[ref["ann_id"]]
        info = self.image_info[ann["image_id"]]
        return digest(ref, sent, ann, info, file_digest(self.images / info["file_name"]))

    def __getitem__(self, index: int) -> Item:
        ref, sent = self.units[index]
        ann = self.annotations[ref["ann_id"]]
        info = self.image_info[ann["image_id"]]
        what = f"item '{self.item_ids[index]}'"
        rgb = read_rgb(self.images / info["file_name"], what, upright=False)
        height, width = rgb.shape[:2]
        if (height, width) != (info["height"], info["width"]):
            raise DataError(
                f"{what}: {self.images / info['file_name']} is {width}x{height} but "
                f"{self.instances_file} says {info['width']}x{info['height']}"
            )
        mask = decode_mask(ann["segmentation"], height, width)
        if self.crop is RefCrop.box:
            x, y, w, h = ann["bbox"]
            box = (math.floor(y), math.floor(x), math.ceil(y + h), math.ceil(x + w))
            box = square_box(box, self.margin, height, width)
        else:
            box = (0, 0, height, width)
        meta = {
            "image": str(self.images / info["file_name"]),
            "ref_id": ref["ref_id"],
            "ann_id": ann["id"],
            "image_id": info["id"],
            "sent_id": _get(sent, "sent_id"),
            "category": self.categories.get(ann.get("category_id")),
        }
        prompts = check_prompts(sent[self.sentence], what)
        return crop_item(index, self.item_ids[index], rgb, prompts, self.resolution, box, mask, meta, self.resample)


def _get(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None
