"""``data=cocostuff27``: COCO-Stuff with the 27 coarse classes of unsupervised segmentation (IIC, PiCIE, STEGO,
DiffSeg), as label-map ground truth (``Item.labels``).

Expected layout under ``data.root`` (STEGO's, also read by DiffSeg's code):

    images/<split>/<id>.jpg                                  COCO images
    annotations/<split>/<id>.png                             label maps (COCO-Stuff "stuffthingmaps")
    curated/<split>/Coco164kFull_Stuff_Coarse_7.txt          the curated list: one <id> per line (2,175 for val2017)

``labels=fine``: the PNGs hold COCO-Stuff's 182 fine ids (0-181, 255 unlabelled) and are mapped to the 27 coarse
classes (0-11 things, 12-26 stuff) with the table every one of those methods uses. ``labels=coarse``: the PNGs
already hold coarse ids 0..num_classes-1 (255 void). Images and label maps are centre-cropped identically
(``crop=center``); the image is resized to ``resolution`` and the labels are scored at their native resolution.
Each item's prompts are the names of the classes present, for text-prompted methods (they are not scored here).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig
from torch.utils.data import Dataset

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.data.configs import Crop, LabelSpace, Resample
from peekaboo.data.digest import digest, file_digest
from peekaboo.data.image import safe_id
from peekaboo.data.transforms import crop_box, read_mask, read_rgb, require_directory, to_working
from peekaboo.errors import DataError

VOID = 255
COARSE_NAMES = (
    "electronic", "appliance", "food", "furniture", "indoor", "kitchen", "accessory", "animal", "outdoor", "person",
    "sports", "vehicle", "ceiling", "floor", "food", "furniture", "rawmaterial", "textile", "wall", "window",
    "building", "ground", "plant", "sky", "solid", "structural", "water",
)  # fmt: skip
# Coarse class of each fine COCO-Stuff id 0..181, in runs: (first fine id, coarse class) until the next run.
_FINE_TO_COARSE_RUNS = (
    (0, 9), (1, 11), (9, 8), (15, 7), (25, 6), (33, 10), (43, 5), (51, 2), (61, 3), (71, 0), (77, 1), (83, 4),
    (91, 17), (93, 22), (94, 20), (96, 22), (97, 15), (98, 25), (99, 16), (100, 13), (101, 12), (103, 17),
    (105, 23), (106, 15), (108, 17), (109, 15), (110, 21), (111, 15), (112, 25), (113, 13), (118, 22), (119, 26),
    (120, 14), (122, 15), (123, 22), (124, 21), (126, 24), (127, 20), (128, 22), (129, 15), (130, 17), (131, 16),
    (132, 15), (133, 22), (134, 24), (135, 21), (136, 17), (137, 25), (138, 16), (139, 21), (140, 17), (141, 22),
    (142, 16), (143, 21), (145, 25), (146, 21), (147, 26), (148, 21), (149, 24), (150, 20), (151, 17), (152, 14),
    (153, 21), (154, 26), (155, 15), (156, 23), (157, 20), (158, 21), (159, 24), (160, 15), (161, 24), (162, 22),
    (163, 25), (164, 15), (165, 20), (166, 17), (168, 22), (169, 14), (170, 18), (177, 26), (179, 19), (181, 24),
)  # fmt: skip


def fine_to_coarse_table() -> np.ndarray:
    """(256,) uint8 lookup: fine id -> coarse class; 182..255 -> void."""
    table = np.full(256, VOID, np.uint8)
    bounds = [start for start, _ in _FINE_TO_COARSE_RUNS[1:]] + [182]
    for (start, coarse), end in zip(_FINE_TO_COARSE_RUNS, bounds, strict=True):
        table[start:end] = coarse
    return table


class CocoStuff27Dataset(Dataset):
    """The curated COCO-Stuff-27 images (or every id of ``image_list``) with coarse label maps."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        positive(cfg, "data.resolution")

    def __init__(
        self,
        root: str,
        split: str = "val2017",
        image_list: str = "curated/val2017/Coco164kFull_Stuff_Coarse_7.txt",
        labels: LabelSpace | str = LabelSpace.fine,
        num_classes: int = 27,
        resolution: int = 512,
        crop: Crop | str = Crop.center,
        limit: int | None = None,
        resample: Resample | str = Resample.bicubic,
    ):
        self.root = require_directory(
            root,
            "data.root",
            "it must hold images/<split>/, annotations/<split>/ and the image list "
            "(see docs/configuration.md, data=cocostuff27)",
        )
        self.labels = LabelSpace(getattr(labels, "value", labels))
        if self.labels is LabelSpace.fine and num_classes != len(COARSE_NAMES):
            raise DataError(f"data.num_classes: fine COCO-Stuff ids map to 27 coarse classes, got {num_classes}")
        listing = self.root / image_list
        if not listing.is_file():
            raise DataError(f"data.image_list: {listing} does not exist (one image id per line)")
        ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        if limit is not None:
            ids = ids[:limit]
        if not ids:
            raise DataError(f"data.image_list: {listing} lists no image ids")
        self.images = [self.root / "images" / split / f"{i}.jpg" for i in ids]
        self.annotations = [self.root / "annotations" / split / f"{i}.png" for i in ids]
        for image, annotation in zip(self.images, self.annotations, strict=True):
            for path in (image, annotation):
                if not path.is_file():
                    raise DataError(f"{listing}: {path} does not exist")
        self.item_ids = [safe_id(i) for i in ids]
        self.num_classes, self.resolution = num_classes, resolution
        self.crop = Crop(getattr(crop, "value", crop))
        self.resample = Resample(getattr(resample, "value", resample))
        self.table = fine_to_coarse_table() if self.labels is LabelSpace.fine else None

    def __len__(self) -> int:
        return len(self.item_ids)

    def input_digest(self, index: int) -> str:
        return digest(file_digest(self.images[index]), file_digest(self.annotations[index]))

    def __getitem__(self, index: int) -> Item:
        what = f"item '{self.item_ids[index]}'"
        rgb = read_rgb(self.images[index], what, upright=False)
        raw = read_mask(self.annotations[index], what, upright=False)
        if raw.shape != rgb.shape[:2]:
            raise DataError(f"{what}: label map {self.annotations[index]} and image differ in size")
        labels = self.table[raw] if self.table is not None else raw
        invalid = (labels != VOID) & (labels >= self.num_classes)
        if invalid.any():
            raise DataError(
                f"{what}: {self.annotations[index]} holds label {int(labels[invalid].max())} >= data.num_classes="
                f"{self.num_classes} (use labels=fine for COCO-Stuff's fine ids)"
            )
        top, left, bottom, right = crop_box(rgb.shape[0], rgb.shape[1], self.crop)
        display = np.ascontiguousarray(rgb[top:bottom, left:right])
        labels = np.ascontiguousarray(labels[top:bottom, left:right])
        present = [int(c) for c in np.unique(labels) if c != VOID]
        names = COARSE_NAMES if self.num_classes == len(COARSE_NAMES) else None
        return Item(
            index=index,
            item_id=self.item_ids[index],
            image=to_working(display, self.resolution, self.resample),
            prompts=[names[c] if names else f"class {c}" for c in present],
            display=display,
            labels=labels,
            meta={
                "image": str(self.images[index]),
                "labels": str(self.annotations[index]),
                "crop_box": [top, left, bottom, right],
                "classes": present,
            },
        )
