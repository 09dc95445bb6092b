"""Segmentation metrics, one module used everywhere.

Per item: the soft alpha is resized (bilinear) to the ground truth's size, thresholded, and compared with the
ground truth ignoring void pixels (255). IoU = |pred & gt| / |pred | gt| (an empty prediction of an empty
ground truth scores 1). Dataset level: mIoU = mean per-item IoU, cIoU = total intersection / total union,
Prec@X = fraction of items with IoU > X.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


# ----------------------------------------------------------------------------------------------------------------
# Unsupervised segmentation: label maps whose segment ids carry no class identity (DiffSeg), scored against
# class label maps after Hungarian matching per image (DiffSeg's protocol; PiCIE/STEGO's histogram).
#
# Per image: the confusion histogram rows = ground-truth classes 0..C-1 (other values, e.g. 255, are void),
# columns = predicted segments (padded to at least C columns); scipy's linear_sum_assignment matches every class
# to a distinct segment maximising overlapping pixels. Per class: tp = overlap with its segment, fn = its other
# pixels, fp = its segment's pixels of other classes. Segments left unmatched (more segments than classes) only
# cost fn; a segment matched to a class absent from the image costs that class fp. Scores: pixel accuracy =
# sum(tp) / valid pixels, mIoU = mean over classes with tp + fp + fn > 0 of tp / (tp + fp + fn). Dataset level:
# the same scores from tp/fp/fn summed over images (what DiffSeg reports), plus the mean of per-image scores.
# ----------------------------------------------------------------------------------------------------------------


def confusion_histogram(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, max(num_classes, segments)) pixel counts of ground-truth class x predicted segment id."""
    if pred.shape != gt.shape:
        raise ValueError(f"label map {pred.shape} and ground truth {gt.shape} differ in shape")
    valid = (gt >= 0) & (gt < num_classes)
    truth, segments = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
    if segments.size and segments.min() < 0:
        raise ValueError("predicted segment ids must be >= 0")
    columns = max(num_classes, int(pred.max()) + 1 if pred.size else 0)
    return np.bincount(truth * columns + segments, minlength=num_classes * columns).reshape(num_classes, columns)


def hungarian_counts(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Per-class tp, fp, fn (lists of ints) and the number of valid pixels after one-to-one matching."""
    from scipy.optimize import linear_sum_assignment

    hist = confusion_histogram(pred, gt, num_classes)
    rows, cols = linear_sum_assignment(hist, maximize=True)
    tp = np.zeros(num_classes, np.int64)
    fp = np.zeros(num_classes, np.int64)
    tp[rows] = hist[rows, cols]
    fp[rows] = hist[:, cols].sum(0) - hist[rows, cols]
    fn = hist.sum(1) - tp
    return {"tp": tp.tolist(), "fp": fp.tolist(), "fn": fn.tolist(), "total": int(hist.sum())}


def hungarian_scores(tp: Sequence[int], fp: Sequence[int], fn: Sequence[int], total: int) -> dict[str, float]:
    """Pixel accuracy and mIoU (over classes seen in the ground truth or matched with pixels) from counts."""
    tp, fp, fn = (np.asarray(v, np.float64) for v in (tp, fp, fn))
    denominator = tp + fp + fn
    seen = denominator > 0
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mIoU": float((tp[seen] / denominator[seen]).mean()) if seen.any() else float("nan"),
    }


def summarize_hungarian(counts: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Dataset-level scores from summed counts, and the means of the per-image scores (``*_per_image``)."""
    if not counts:
        return {}
    summed = {key: np.sum([c[key] for c in counts], axis=0) for key in ("tp", "fp", "fn", "total")}
    dataset = hungarian_scores(summed["tp"], summed["fp"], summed["fn"], int(summed["total"]))
    images = [hungarian_scores(c["tp"], c["fp"], c["fn"], c["total"]) for c in counts]
    out = {"hungarian_n": len(counts)}
    for key in ("pixel_accuracy", "mIoU"):
        out[f"hungarian_{key}"] = dataset[key]
        out[f"hungarian_{key}_per_image"] = float(np.nanmean([s[key] for s in images]))
    return out
