"""Build VOC-C from a PASCAL VOC2012 devkit: ``python -m peekaboo.data.build_voc_c voc_root=... out=...``.

The rule (the authors' cropping script is not public; this is ours, documented in docs/reproducing.md):

1. Images: the ids listed in ``ImageSets/Segmentation/<split>.txt`` (default ``val``).
2. Objects: the instance ids of ``SegmentationObject/<id>.png`` (palette indices 1..254; 0 is background and 255
   the void border). An object's class is the majority ``SegmentationClass`` value over its pixels.
3. Subject: an object is *large* when its tight bounding box is at least ``min_size`` (128) pixels wide **and**
   tall. An image qualifies when exactly one of its objects is large; that object is the single subject.
4. Crop: the subject's box grown by ``margin`` (0.1) of its longer side on every side, made square (side = the
   grown longer side, capped at the image's shorter side), centred on the subject, shifted to lie inside the image.
5. Ground truth inside the crop (``gt``): ``class`` (default, as the authors scored): every pixel of the subject's
   class is 1, VOC's void border stays 255 (ignored), everything else 0; ``instance``: only the subject is 1 and
   other objects of its class become void (a class-name prompt legitimately covers them).
6. Prompt: the class name through ``renames`` (default ``original``: the authors' prompts, 'motorbike' ->
   'motorcycle', 'pottedplant' -> 'potted plant', 'tvmonitor' -> 'tv/monitor'; ``natural`` also writes
   'airplane', 'dining table', 'tv monitor'; ``none``; or an explicit mapping).

Output under ``out``: ``images/<id>.png`` (the crop, lossless), ``masks/<id>.png`` (0/1/255), ``manifest.csv``
(id, image, mask, prompt, class, box, subject_box, source_image, object, width, height; boxes are
``x0 y0 x1 y1`` in source pixels, end exclusive) and ``build_info.json`` (the rule's parameters and counts).
``manifest.csv`` is written last, atomically: a directory without it is not a finished build.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from PIL import Image, UnidentifiedImageError

from peekaboo.data.configs import MANIFEST
from peekaboo.data.transforms import read_rgb, square_box
from peekaboo.errors import DataError, PeekabooError
from peekaboo.io.atomic import write_bytes, write_json, write_text
from peekaboo.io.images import png_bytes
from peekaboo.io.tables import csv_text

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOID = 255
ORIGINAL_RENAMES = {"motorbike": "motorcycle", "pottedplant": "potted plant", "tvmonitor": "tv/monitor"}
RENAMES = {
    "original": ORIGINAL_RENAMES,
    "natural": {
        **ORIGINAL_RENAMES,
        "aeroplane": "airplane",
        "diningtable": "dining table",
        "tvmonitor": "tv monitor",
    },
    "none": {},
}
LAYOUT = {
    "JPEGImages": "the photos, <id>.jpg",
    "SegmentationClass": "class-index palette PNGs, <id>.png",
    "SegmentationObject": "instance-index palette PNGs, <id>.png",
    "ImageSets/Segmentation": "the split lists train.txt, val.txt, trainval.txt",
}


@dataclass
class BuildVOCCConfig:
    """Arguments of the builder (``key=value`` on the command line)."""

    voc_root: str = MISSING  # VOCdevkit/VOC2012 (or VOCdevkit, which holds it)
    out: str = MISSING  # output directory (data.root of data=voc_c)
    split: str = "val"  # ImageSets/Segmentation/<split>.txt
    min_size: int = 128  # a subject's box must be at least this wide and tall (pixels)
    margin: float = 0.1  # crop margin on each side, as a fraction of the subject box's longer side
    gt: str = "class"  # class | instance
    renames: Any = "original"  # original | natural | none | {class: prompt}


@dataclass
class Subject:
    object_id: int
    class_index: int
    box: tuple[int, int, int, int]  # top, left, bottom, right (exclusive)


def devkit_root(voc_root: str | Path) -> Path:
    """The VOC2012 directory, checked for the layout; errors name the missing part and what it must hold."""
    root = Path(voc_root).expanduser()
    if not (root / "JPEGImages").is_dir() and (root / "VOC2012").is_dir():
        root = root / "VOC2012"
    if not root.is_dir():
        raise DataError(f"voc_root: directory {root} does not exist (give the devkit's VOC2012 directory)")
    for sub, what in LAYOUT.items():
        if not (root / sub).is_dir():
            raise DataError(
                f"voc_root: {root} has no {sub}/ ({what}); voc_root must be the VOC2012 directory of the devkit, "
                f"containing {', '.join(d + '/' for d in LAYOUT)}"
            )
    return root


def read_indices(path: Path, image_id: str) -> np.ndarray:
    """A VOC annotation PNG as its (H, W) palette indices; RGB renderings are refused (their colours are not ids)."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise DataError(
                    f"{path}: image {image_id}: annotation is a {image.mode} image; VOC annotations are palette "
                    "(or greyscale) PNGs whose pixel values are class/object indices"
                )
            return np.asarray(image)
    except FileNotFoundError as err:
        raise DataError(f"{path}: annotation of image {image_id} (listed in the split file) does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{path}: image {image_id}: cannot read the annotation ({type(err).__name__}: {err})") from err


def objects(classes: np.ndarray, instances: np.ndarray, image_id: str, object_file: Path) -> list[Subject]:
    """Every annotated object of an image with its majority class and tight box."""
    found = []
    for object_id in np.unique(instances):
        if object_id in (0, VOID):
            continue
        ys, xs = np.nonzero(instances == object_id)
        values = classes[ys, xs]
        values = values[(values != 0) & (values != VOID)]
        if values.size == 0 or values.max() >= len(VOC_CLASSES):
            raise DataError(
                f"{object_file}: image {image_id}, object {int(object_id)}: its pixels carry no class 1..20 in "
                f"SegmentationClass (values {sorted(set(classes[ys, xs].tolist()))[:8]}); the two annotations disagree"
            )
        box = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
        found.append(Subject(int(object_id), int(np.bincount(values).argmax()), box))
    return found


def ground_truth(classes: np.ndarray, instances: np.ndarray, subject: Subject, mode: str) -> np.ndarray:
    """0/1/255 ground truth of the whole image for ``subject`` (see the module docstring, rule 5)."""
    same_class = classes == subject.class_index
    if mode == "class":
        mask = same_class.astype(np.uint8)
    else:
        mask = np.where(same_class, VOID, 0).astype(np.uint8)
        mask[instances == subject.object_id] = 1
    mask[classes == VOID] = VOID
    return mask


def resolve_renames(renames: Any) -> dict[str, str]:
    if isinstance(renames, str):
        if renames not in RENAMES:
            raise DataError(f"renames: unknown table {renames!r}; use one of {', '.join(RENAMES)} or a mapping")
        return dict(RENAMES[renames])
    if isinstance(renames, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in renames.items()):
        unknown = sorted(set(renames) - set(VOC_CLASSES[1:]))
        if unknown:
            raise DataError(f"renames: {unknown} are not VOC class names ({', '.join(VOC_CLASSES[1:])})")
        return dict(renames)
    raise DataError(f"renames: expected a table name or a {{class: prompt}} mapping, got {renames!r}")


def build_voc_c(cfg: BuildVOCCConfig) -> dict[str, Any]:
    """Write VOC-C under ``cfg.out``; returns the build info (also written to build_info.json)."""
    root = devkit_root(cfg.voc_root)
    if cfg.gt not in ("class", "instance"):
        raise DataError(f"gt: must be 'class' or 'instance', got {cfg.gt!r}")
    if cfg.min_size < 1 or cfg.margin < 0:
        raise DataError(f"min_size must be >= 1 and margin >= 0, got min_size={cfg.min_size}, margin={cfg.margin}")
    renames = resolve_renames(cfg.renames)
    split_file = root / "ImageSets" / "Segmentation" / f"{cfg.split}.txt"
    if not split_file.is_file():
        listed = sorted(p.stem for p in split_file.parent.glob("*.txt"))
        raise DataError(f"split: {split_file} does not exist (split files there: {', '.join(listed) or 'none'})")
    image_ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    out = Path(cfg.out).expanduser()
    rows, skipped = [], Counter()
    for image_id in image_ids:
        class_file = root / "SegmentationClass" / f"{image_id}.png"
        object_file = root / "SegmentationObject" / f"{image_id}.png"
        classes, instances = read_indices(class_file, image_id), read_indices(object_file, image_id)
        if classes.shape != instances.shape:
            raise DataError(
                f"{object_file}: image {image_id}: {instances.shape[::-1]} pixels but {class_file} has "
                f"{classes.shape[::-1]}; the annotations of one image must have the same size"
            )
        found = objects(classes, instances, image_id, object_file)
        large = [s for s in found if min(s.box[2] - s.box[0], s.box[3] - s.box[1]) >= cfg.min_size]
        if len(large) != 1:
            skipped["no large object" if not large else "several large objects"] += 1
            continue
        subject = large[0]
        image_file = root / "JPEGImages" / f"{image_id}.jpg"
        rgb = read_rgb(image_file, f"image {image_id}", upright=False)
        if rgb.shape[:2] != classes.shape:
            raise DataError(
                f"{image_file}: image {image_id} is {rgb.shape[1]}x{rgb.shape[0]} but its annotation {class_file} "
                f"is {classes.shape[1]}x{classes.shape[0]}"
            )
        top, left, bottom, right = square_box(subject.box, cfg.margin, *classes.shape)
        mask = ground_truth(classes, instances, subject, cfg.gt)[top:bottom, left:right]
        write_bytes(out / "images" / f"{image_id}.png", png_bytes(np.ascontiguousarray(rgb[top:bottom, left:right])))
        write_bytes(out / "masks" / f"{image_id}.png", png_bytes(np.ascontiguousarray(mask)))
        name = VOC_CLASSES[subject.class_index]
        st, sl, sb, sr = subject.box
        rows.append(
            {
                "id": image_id,
                "image": f"images/{image_id}.png",
                "mask": f"masks/{image_id}.png",
                "prompt": renames.get(name, name),
                "class": name,
                "box": f"{left} {top} {right} {bottom}",
                "subject_box": f"{sl} {st} {sr} {sb}",
                "source_image": f"JPEGImages/{image_id}.jpg",
                "object": subject.object_id,
                "width": right - left,
                "height": bottom - top,
            }
        )
    if not rows:
        raise DataError(
            f"{split_file}: none of its {len(image_ids)} images has exactly one object of at least "
            f"{cfg.min_size}x{cfg.min_size} pixels ({dict(skipped)}); nothing written"
        )
    info = {
        "voc_root": str(root),
        "split": cfg.split,
        "min_size": cfg.min_size,
        "margin": cfg.margin,
        "gt": cfg.gt,
        "renames": renames,
        "images_in_split": len(image_ids),
        "items": len(rows),
        "skipped": dict(skipped),
        "per_class": dict(sorted(Counter(r["class"] for r in rows).items())),
    }
    write_json(out / "build_info.json", info)
    write_text(out / MANIFEST, csv_text(rows))
    return info


def parse_args(argv: list[str]) -> BuildVOCCConfig:
    """``key=value`` arguments checked against ``BuildVOCCConfig`` (unknown keys and missing values are errors)."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(BuildVOCCConfig), OmegaConf.from_cli(argv))
        return BuildVOCCConfig(**OmegaConf.to_container(cfg, throw_on_missing=True))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "arguments"
        raise DataError(
            f"{key}: {str(err).splitlines()[0]}. Usage: python -m peekaboo.data.build_voc_c "
            "voc_root=VOCdevkit/VOC2012 out=DIR [split=val] [min_size=128] [margin=0.1] [gt=class|instance] "
            "[renames=original|natural|none]"
        ) from None


def main(argv: list[str] | None = None) -> None:
    try:
        info = build_voc_c(parse_args(sys.argv[1:] if argv is None else argv))
    except PeekabooError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    skipped = ", ".join(f"{count} with {reason}" for reason, count in info["skipped"].items()) or "none"
    print(f"VOC-C: {info['items']} items from {info['images_in_split']} images of {info['split']}; skipped: {skipped}")


if __name__ == "__main__":
    main()
