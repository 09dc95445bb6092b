"""Metric values on hand-computed masks: void pixels, empty masks, resizing, the threshold sweep, aggregation."""

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult
from peekaboo.evaluation.metrics import (
    TUNED_NOTE,
    best_threshold,
    intersection_union,
    iou_from_counts,
    score_alpha,
    summarize,
    sweep_counts,
)
from peekaboo.evaluation.postprocess import PostprocessConfig, disk
from peekaboo.evaluation.results import aggregate, write_item
from peekaboo.tasks.base import Unit
from peekaboo.tasks.segment import SegmentTask


def test_void_pixels_are_ignored():
    alpha = np.zeros((4, 4), np.float32)
    alpha[:, :2] = 0.9  # predicts the left half (8 pixels)
    gt = np.zeros((4, 4), np.uint8)
    gt[:, :2] = 1
    gt[0, 0] = 255  # void: counted neither in the intersection nor in the union
    gt[3, 3] = 255
    assert intersection_union(alpha > 0.5, gt) == (7, 7)
    scores = score_alpha(alpha, gt, (0.5,))
    assert scores["iou"] == [1.0] and scores["intersection"] == [7] and scores["union"] == [7]


def test_empty_and_full_masks():
    empty, gt = np.zeros((4, 4), bool), np.zeros((4, 4), np.uint8)
    assert iou_from_counts(*intersection_union(empty, gt)) == 1.0  # nothing to find, nothing found
    gt[1:3, 1:3] = 1
    assert iou_from_counts(*intersection_union(empty, gt)) == 0.0
    assert intersection_union(np.ones((4, 4), bool), gt) == (4, 16)  # all-ones: 4 / 16
    with pytest.raises(ValueError, match="differ in shape"):
        intersection_union(empty, np.zeros((4, 5), np.uint8))


def test_alpha_is_resized_bilinearly_to_the_ground_truth():
    # 2 -> 4 bilinear (half-pixel centres): each axis becomes [1, .75, .25, 0]; values are products.
    alpha = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    gt = np.zeros((4, 4), np.uint8)
    gt[:2, :2] = 1
    scores = score_alpha(alpha, gt, (0.5, 0.6))
    assert scores["intersection"] == [4, 3]  # > 0.5: 1, .75, .75, .5625; > 0.6: drops .5625
    assert scores["union"] == [4, 4]
    assert scores["iou"] == [1.0, 0.75]


def test_sweep_counts_by_hand_and_against_direct_thresholding():
    values = np.array([[0.05, 0.5, 0.51, 0.99]])
    gt = np.array([[1, 1, 0, 1]], np.uint8)
    inter, union = sweep_counts(values, gt, 100)
    assert (inter[0], union[0]) == (3, 4)  # > 0: everything
    assert (inter[5], union[5]) == (2, 4)  # > 0.05 drops the first pixel
    assert (inter[50], union[50]) == (1, 4)  # > 0.5: 0.51 (background) and 0.99
    assert (inter[99], union[99]) == (0, 3)  # > 0.99: nothing predicted, union = the target
    rng = np.random.default_rng(0)
    values = rng.random((13, 17)).astype(np.float32)
    gt = rng.integers(0, 2, (13, 17)).astype(np.uint8)
    gt[rng.random((13, 17)) < 0.1] = 255
    inter, union = sweep_counts(values.astype(np.float64), gt, 100)
    for level in range(100):
        assert (inter[level], union[level]) == intersection_union(values.astype(np.float64) > level / 100, gt)
    fixed = score_alpha(values, gt, (0.5,), levels=100)  # the fixed threshold equals the sweep's level 50
    assert fixed["sweep"]["intersection"][50] == fixed["intersection"][0]
    assert fixed["sweep"]["union"][50] == fixed["union"][0]


def test_summary_precision_is_strictly_greater_and_ciou_pools_counts():
    out = summarize([0.2, 0.4, 0.8, 1.0], [2, 4, 8, 10], [10, 10, 10, 10])
    assert out["n"] == 4 and out["mIoU"] == pytest.approx(0.6)
    assert out["cIoU"] == pytest.approx(24 / 40)
    assert [out[f"Prec@{x}"] for x in (0.2, 0.4, 0.6, 0.8)] == [0.75, 0.5, 0.5, 0.25]


def test_best_threshold_maximises_miou_over_the_sweep():
    ious = np.array([[0.2, 0.5, 0.9, 0.1], [0.4, 0.5, 0.7, 0.3]])  # mean per level: .3 .5 .8 .2
    best = best_threshold((ious * 10).astype(int), np.full((2, 4), 10))
    assert best["threshold"] == 0.5 and best["levels"] == 4
    assert best["mIoU"] == pytest.approx(0.8) and best["cIoU"] == pytest.approx(16 / 20)
    assert best["Prec@0.8"] == 0.5 and best["ious"] == pytest.approx([0.9, 0.7])


def test_postprocess_steps():
    values = np.array([[0.0, 1.0], [1.0, 2.0]])
    chain = PostprocessConfig(standardize=True, mean_scale=0.5, std_scale=2.0)
    # mean 1, std sqrt(0.5): (x - 0.5) / (2 sqrt(0.5))
    np.testing.assert_allclose(chain(values), (values - 0.5) / (2 * np.sqrt(0.5)))
    assert disk(5).sum() == 21 and disk(5)[0].tolist() == [False, True, True, True, False]
    point = np.zeros((11, 11))
    point[5, 5] = 1.0
    dilated = PostprocessConfig(dilate=5)(point)
    assert np.array_equal(dilated > 0, np.pad(disk(5), 3))
    assert np.array_equal(PostprocessConfig(dilate=5, erode=5)(point), point)  # closing keeps a point
    blurred = PostprocessConfig(blur_sigma=1.0)(point)
    assert blurred.sum() == pytest.approx(1.0) and blurred[5, 5] == pytest.approx(1 / (2 * np.pi), rel=0.02)
    assert not PostprocessConfig().enabled and np.array_equal(PostprocessConfig()(point), point)


def test_segment_task_scores_the_postprocessed_map_at_the_chain_threshold():
    alpha = np.zeros((8, 8), np.float32)
    alpha[2:6, 2:6] = 0.3  # below 0.5, above the chain's 0.2
    gt = np.zeros((8, 8), np.uint8)
    gt[2:6, 2:6] = 1
    item = Item(0, "x", torch.zeros(3, 8, 8), ["thing"], mask=gt)
    result = EngineResult({"alpha": torch.from_numpy(alpha)[None, None]}, {}, {}, [], 1, 0.1)
    plain = SegmentTask(sweep_levels=10).artifacts([item], [Unit(0, 0, "thing", 0)], result, {})[0]
    assert plain.record["iou"] == 0.0 and plain.record["results"][0]["threshold"] == 0.5
    assert plain.record["results"][0]["scores"]["sweep"]["intersection"][2] == 16  # level 0.2 finds it
    task = SegmentTask(postprocess={"name": "chain", "threshold": 0.2, "blur_sigma": 0.0})
    out = task.artifacts([item], [Unit(0, 0, "thing", 0)], result, {})[0]
    assert out.record["iou"] == 1.0 and out.record["postprocess"] == "chain"
    mask = np.asarray(Image.open(io.BytesIO(out.files["mask.png"])))
    assert np.array_equal(mask > 127, gt == 1)


def test_aggregate_writes_fixed_and_labelled_best_threshold_metrics(tmp_path):
    def record(item_id, index, inter, union):
        sweep = {"levels": 4, "intersection": inter, "union": union}
        entry = {"prompt": "p", "dir": ".", "threshold": 0.5, "iou": inter[2] / union[2]}
        entry.update(intersection=inter[2], union=union[2], scores={"sweep": sweep})
        return {"item_id": item_id, "index": index, "seed": index, "results": [entry], "timings": {"seconds": 2.0}}

    write_item(tmp_path / "items" / "a", {}, record("a", 0, [2, 9, 5, 1], [10, 10, 10, 10]))
    write_item(tmp_path / "items" / "b", {}, record("b", 1, [4, 7, 9, 3], [10, 10, 10, 10]))
    metrics = aggregate(tmp_path, ["a", "b", "c"])  # c never finished
    assert metrics["items"] == 2 and metrics["expected_items"] == 3 and metrics["threshold"] == 0.5
    assert metrics["mIoU"] == pytest.approx(0.7) and metrics["cIoU"] == pytest.approx(14 / 20)
    best = metrics["best_threshold"]
    assert best["threshold"] == 0.25 and best["mIoU"] == pytest.approx(0.8) and best["note"] == TUNED_NOTE
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    rows = list(csv.DictReader((tmp_path / "per_item.csv").open()))
    assert [(r["item_id"], float(r["iou"]), float(r["iou_best"])) for r in rows] == [("a", 0.5, 0.9), ("b", 0.9, 0.7)]
