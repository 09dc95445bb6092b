"""Segmentation metrics, one module used everywhere.

Per item: the soft alpha is resized (bilinear) to the ground truth's size, thresholded, and compared with the
ground truth ignoring void pixels (255). IoU = |pred & gt| / |pred | gt| (an empty prediction of an empty
ground truth scores 1). Dataset level: mIoU = mean per-item IoU, cIoU = total intersection / total union,
Prec@X = fraction of items with IoU > X.

The authors report the best of a threshold sweep (100 levels on COCO). Each item stores its intersection and
union at every level ``k / levels`` (``sweep_counts``), so ``best_threshold`` picks the dataset-level threshold
with the highest mIoU at aggregation time without reloading any mask. That number is tuned on the test set and
is always reported apart from the fixed-threshold one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

VOID = 255
PRECISION_LEVELS = (0.2, 0.4, 0.6, 0.8)
SWEEP_LEVELS = 100  # the authors' COCO sweep
TUNED_NOTE = "threshold tuned on the test set (the level with the highest mIoU): an optimistic upper bound"


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


def sweep_thresholds(levels: int = SWEEP_LEVELS) -> np.ndarray:
    """The sweep's thresholds ``k / levels`` for k = 0 .. levels - 1 (float64, so 0.5 is exactly level levels/2)."""
    return np.arange(levels, dtype=np.float64) / levels


def sweep_counts(values: np.ndarray, gt: np.ndarray, levels: int = SWEEP_LEVELS) -> tuple[list[int], list[int]]:
    """Intersection and union of ``values > k / levels`` with ``gt`` at every level, in one pass over the pixels.

    Each valid pixel is binned by how many thresholds lie strictly below its value; the pixels predicted at
    level k are those in bins > k, so reversed cumulative histograms give every level's counts.
    """
    if values.shape != gt.shape:
        raise ValueError(f"prediction {values.shape} and ground truth {gt.shape} differ in shape")
    valid = gt != VOID
    target = gt[valid] > 0
    bins = np.searchsorted(sweep_thresholds(levels), values[valid].astype(np.float64), side="left")
    above_target = np.cumsum(np.bincount(bins[target], minlength=levels + 1)[::-1])[::-1]
    above_other = np.cumsum(np.bincount(bins[~target], minlength=levels + 1)[::-1])[::-1]
    intersection = above_target[1:]
    union = int(target.sum()) + above_other[1:]
    return [int(v) for v in intersection], [int(v) for v in union]


def score_alpha(
    alpha: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] = (0.5,), levels: int = 0
) -> dict[str, object]:
    """Resize ``alpha`` (h, w) to ``gt`` (H, W); intersection, union and IoU at each threshold (pred = alpha > thr).

    ``levels`` > 0 adds ``sweep``: the counts at every level of a ``levels``-step threshold sweep.
    """
    from peekaboo.io.images import resize_map  # torch: this module stays light for the task schema (SWEEP_LEVELS)

    resized = resize_map(alpha, gt.shape).astype(np.float64)
    counts = [intersection_union(resized > float(t), gt) for t in thresholds]
    scores: dict[str, object] = {
        "thresholds": [float(t) for t in thresholds],
        "intersection": [c[0] for c in counts],
        "union": [c[1] for c in counts],
        "iou": [iou_from_counts(*c) for c in counts],
    }
    if levels:
        intersection, union = sweep_counts(resized, gt, levels)
        scores["sweep"] = {"levels": levels, "intersection": intersection, "union": union}
    return scores


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


def sweep_ious(intersections: np.ndarray, unions: np.ndarray) -> np.ndarray:
    """Per-item IoU at every level from (items, levels) count arrays."""
    intersections, unions = np.asarray(intersections, np.float64), np.asarray(unions, np.float64)
    return np.where(unions == 0, 1.0, intersections / np.maximum(unions, 1))


def best_threshold(intersections: Sequence[Sequence[int]], unions: Sequence[Sequence[int]]) -> dict[str, object]:
    """The dataset-level threshold of the sweep with the highest mIoU (the lowest such level on ties).

    ``intersections`` and ``unions`` are (items, levels). Returns the threshold, the metrics there
    (``summarize``'s keys) and the per-item IoUs there (``ious``).
    """
    inter, union = np.asarray(intersections, np.int64), np.asarray(unions, np.int64)
    if inter.ndim != 2 or inter.shape != union.shape or inter.shape[0] == 0:
        raise ValueError(f"expected two equal (items, levels) arrays, got {inter.shape} and {union.shape}")
    ious = sweep_ious(inter, union)
    level = int(np.argmax(ious.mean(axis=0)))
    at = ious[:, level]
    return {
        "threshold": float(sweep_thresholds(inter.shape[1])[level]),
        "levels": int(inter.shape[1]),
        **summarize(at, inter[:, level], union[:, level]),
        "ious": [float(v) for v in at],
    }


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
