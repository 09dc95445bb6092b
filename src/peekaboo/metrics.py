"""Segmentation metrics, one module used everywhere.

Per item: the soft alpha is resized (bilinear) to the ground truth's size, thresholded, and compared with the
ground truth ignoring void pixels (255). IoU = |pred & gt| / |pred | gt| (an empty prediction of an empty
ground truth scores 1). Dataset level: mIoU = mean per-item IoU, cIoU = total intersection / total union,
Prec@X = fraction of items with IoU > X.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from peekaboo.io.images import resize_map

VOID = 255
PRECISION_LEVELS = (0.2, 0.4, 0.6, 0.8)


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Counts for a boolean prediction and a uint8 ground truth (0, 1, 255 = void) of the same shape."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    valid = gt != VOID
    target = (gt > 0) & valid
    pred = pred.astype(bool) & valid
    return int((pred & target).sum()), int((pred | target).sum())


def iou_from_counts(intersection: float, union: float) -> float:
    return 1.0 if union == 0 else float(intersection) / float(union)


def score_alpha(alpha: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] = (0.5,)) -> dict[str, list]:
    """Resize ``alpha`` (h, w) to ``gt`` (H, W); intersection, union and IoU at each threshold (pred = alpha > thr)."""
    resized = resize_map(alpha, gt.shape)
    counts = [intersection_union(resized > t, gt) for t in thresholds]
    return {
        "thresholds": [float(t) for t in thresholds],
        "intersection": [c[0] for c in counts],
        "union": [c[1] for c in counts],
        "iou": [iou_from_counts(*c) for c in counts],
    }


def summarize(
    ious: Sequence[float], intersections: Sequence[float] | None = None, unions: Sequence[float] | None = None
) -> dict[str, float]:
    """Dataset-level metrics from per-item IoUs (and counts for cIoU)."""
    ious = np.asarray(ious, dtype=np.float64)
    out: dict[str, float] = {"n": int(ious.size), "mIoU": float(ious.mean()) if ious.size else float("nan")}
    if intersections is not None and unions is not None:
        total_union = float(np.sum(unions))
        out["cIoU"] = iou_from_counts(float(np.sum(intersections)), total_union) if ious.size else float("nan")
    for level in PRECISION_LEVELS:
        out[f"Prec@{level}"] = float((ious > level).mean()) if ious.size else float("nan")
    return out
