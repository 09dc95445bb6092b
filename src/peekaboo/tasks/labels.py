"""Label-map outputs of unsupervised segmenters (method=diffseg): segment ids, their overlay and Hungarian scores.

A method hands over per-pixel segment scores (K, s, s) at its own resolution; a label map is the argmax after
bilinear upsampling (the "non-maximum suppression" of DiffSeg), computed directly at each size it is needed:
``scale`` x s for ``labels.png``/``labels.npy``, the ground truth's size for scoring and the overlay.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from peekaboo.data.base import Item
from peekaboo.evaluation.metrics import hungarian_counts, hungarian_scores
from peekaboo.io.images import label_overlay, label_png, png_bytes, to_uint8_image
from peekaboo.tasks.base import ItemArtifacts, item_record


def label_map(scores: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(K, s, s) per-segment scores -> (H, W) int64 ids: bilinear upsampling to ``size``, then argmax."""
    upsampled = F.interpolate(scores[None].float(), size=tuple(size), mode="bilinear", align_corners=False)[0]
    return upsampled.argmax(0).numpy()


def compact(labels: np.ndarray) -> np.ndarray:
    """Renumber the ids that occur to 0..n-1, in increasing order."""
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def label_artifacts(
    item: Item,
    scores: torch.Tensor,
    scale: int,
    num_classes: int | None,
    seed: int,
    timings: dict[str, Any],
    record: dict[str, Any],
) -> ItemArtifacts:
    """labels.png (palette PNG: pixel value = segment id), labels.npy, overlay.png and the result record.

    With a ground-truth label map (``item.labels``), the record holds the per-image Hungarian counts and scores
    against ``num_classes`` classes (None: the largest non-void id in the ground truth + 1).
    """
    side = scores.shape[-1]
    labels = compact(label_map(scores, (side * scale, side * scale)))
    display = item.display if item.display is not None else to_uint8_image(item.image)
    shown = label_map(scores, display.shape[:2])
    buffer = io.BytesIO()
    np.save(buffer, labels.astype(np.uint16))
    preview = label_overlay(display, compact(shown))
    files = {"labels.png": label_png(labels), "labels.npy": buffer.getvalue(), "overlay.png": png_bytes(preview)}
    rec = item_record(item, seed, [], [], timings, record)
    rec["segments"] = int(labels.max()) + 1
    if item.labels is not None:
        gt = item.labels
        classes = num_classes or int(gt[gt != 255].astype(np.int64).max(initial=-1)) + 1
        pred = shown if shown.shape == gt.shape else label_map(scores, gt.shape)
        counts = hungarian_counts(pred, gt, classes)
        rec["hungarian"] = {**hungarian_scores(**counts), **counts, "num_classes": classes}
    return ItemArtifacts(item.item_id, files, rec, preview=preview)
