"""Schemas of the ``data`` group.

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

MANIFEST = "manifest.csv"  # data=voc_c's index of crops, written by peekaboo.data.build_voc_c


class Crop(enum.Enum):
    center = "center"  # largest centred square, then resize (keeps the aspect ratio)
    none = "none"  # resize the whole image to a square (distorts non-square images)


class Resample(enum.Enum):
    """How the square crop becomes the working image (docs/departures.md, "Input preprocessing")."""

    original = "original"  # the authors' steps: anti-aliased bilinear to 512, then bilinear to resolution; float
    bicubic = "bicubic"  # one anti-aliased bicubic resize (PIL), rounded to uint8


class LabelSpace(enum.Enum):
    fine = "fine"  # COCO-Stuff's 182 fine ids, mapped to the 27 coarse classes
    coarse = "coarse"  # already coarse ids 0..num_classes-1


@dataclass
class CocoStuff27Config:
    """Schema of ``data=cocostuff27``."""

    _target_: str = "peekaboo.data.cocostuff.CocoStuff27Dataset"
    name: str = "cocostuff27"
    root: str = ""
    split: str = "val2017"
    image_list: str = "curated/val2017/Coco164kFull_Stuff_Coarse_7.txt"  # relative to root
    labels: LabelSpace = LabelSpace.fine
    num_classes: int = 27  # also read by method=diffseg (Hungarian matching over these classes)
    resolution: int = 512  # DiffSeg resizes the centre crop to 512
    crop: Crop = Crop.center
    limit: int | None = None  # only the first N ids of the list (quick runs)
    # DiffSeg's data: its authors resize with TensorFlow's bilinear filter, which neither choice reproduces; bicubic
    # (one anti-aliased resize to uint8) stays the default here; original: Peekaboo's two float resizes
    resample: Resample = Resample.bicubic


@dataclass
class FgBgGridDataConfig:
    """Schema of ``data=fg_bg_grid``."""

    _target_: str = "peekaboo.data.fg_bg_grid.FgBgGridDataset"
    name: str = "fg_bg_grid"
    foregrounds: list[str] = field(default_factory=list)  # F foreground prompts (rows of the grid)
    backgrounds: list[str] = field(default_factory=list)  # B background prompts (columns)
    joiner: str = "by"
    template: str = "{fg} {joiner} {bg}"  # each cell's prompt; placeholders {fg}, {bg}, {joiner}
    repeats: int = 1  # grids (items), each with its own seed


@dataclass
class FolderDataConfig:
    """Schema of ``data=folder``."""

    _target_: str = "peekaboo.data.folder.FolderDataset"
    name: str = "folder"
    root: str = ""
    index: str = "index.csv"
    prompt: Any = None  # set: every image directly under root is an item with this prompt (or list); no index
    resolution: int = 256
    crop: Crop = Crop.center
    void: bool = False
    resample: Resample = Resample.original  # original (the authors') | bicubic, see Resample


@dataclass
class ImageDataConfig:
    """Schema of ``data=image``."""

    _target_: str = "peekaboo.data.image.ImageDataset"
    name: str = "image"
    path: str = ""
    prompt: Any = ""  # a string, or a list of strings for several masks of the same image
    resolution: int = 256  # working resolution of the alpha mask and composite
    crop: Crop = Crop.center
    mask: str | None = None  # optional ground-truth mask (nonzero = object) for scoring
    void: bool = False  # treat mask value 255 as void (ignored when scoring)
    item_id: str | None = None  # default: the image's file stem
    resample: Resample = Resample.original  # original (the authors') | bicubic, see Resample


@dataclass
class PromptsDataConfig:
    """Schema of ``data=prompts``."""

    _target_: str = "peekaboo.data.prompts.PromptsDataset"
    name: str = "prompts"
    prompts: Any = MISSING  # a prompt or a list of prompts
    repeats: int = 1  # items per prompt (each with its own seed)


class RefCrop(enum.Enum):
    none = "none"  # the whole image, resized to the working square
    box = "box"  # a square around the referred object's box, grown by data.margin


@dataclass
class RefCOCODataConfig:
    """Schema of ``data=refcoco``."""

    _target_: str = "peekaboo.data.refcoco.RefCOCODataset"
    name: str = "refcoco"
    root: str = ""
    dataset: str = "refcoco"  # refcoco | refcoco+ | refcocog
    split_by: str = "unc"  # unc (refcoco, refcoco+) | umd | google (refcocog)
    split: str = "val"  # val | testA | testB (unc) | test (umd) | train
    images: str | None = None  # None: <root>/images/mscoco/images/train2014
    crop: RefCrop = RefCrop.none
    margin: float = 0.1  # crop=box: margin on each side, as a fraction of the box's longer side
    sentence: str = "sent"  # sentence field used as the prompt: sent (normalised) | raw
    resolution: int = 256
    resample: Resample = Resample.original  # original (the authors') | bicubic, see Resample
    trust_pickle: bool = False  # true: read the refs pickle with plain pickle.load (can run code: trusted files only)


@dataclass
class ToyDataConfig:
    """Schema of ``data=toy``."""

    _target_: str = "peekaboo.data.toy.ToyDataset"
    name: str = "toy"
    num_scenes: int = 16
    size: int = 32  # 32 or 64
    distractors: int = 1
    background: str = "blobs"  # blobs | stripes | plain | noise
    seed: int = 0
    prompt: str | None = None  # None: each scene's own target prompt


@dataclass
class VOCCDataConfig:
    """Schema of ``data=voc_c``."""

    _target_: str = "peekaboo.data.voc_c.VOCCDataset"
    name: str = "voc_c"
    root: str = ""
    manifest: str = MANIFEST
    resolution: int = 256
    renames: dict[str, str] = field(default_factory=dict)
    resample: Resample = Resample.original  # original (the authors') | bicubic, see Resample
