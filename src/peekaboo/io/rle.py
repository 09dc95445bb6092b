"""COCO run-length encoding of binary masks (pycocotools), with ``counts`` as text so it serialises to JSON."""

from __future__ import annotations

from typing import Any

import numpy as np


def coco_rle(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> ``{"size": [H, W], "counts": str}``, readable by ``pycocotools.mask.decode``."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """The inverse of ``coco_rle``: (H, W) bool."""
    from pycocotools import mask as coco_mask

    return coco_mask.decode({"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}).astype(bool)
