"""Hungarian-matched metrics on hand-made label maps, and the COCO-Stuff-27 loader on a synthetic layout."""

import numpy as np
import pytest

from conftest import write_cocostuff_layout
from peekaboo.data.cocostuff import COARSE_NAMES, CocoStuff27Dataset, fine_to_coarse_table
from peekaboo.errors import DataError
from peekaboo.evaluation.metrics import hungarian_counts, hungarian_scores, summarize_hungarian

GT = np.array(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 2, 255],
        [2, 2, 2, 255],
    ],
    np.uint8,
)


def test_a_permutation_of_the_labels_scores_one():
    pred = np.array([7, 3, 5], np.int64)[np.where(GT == 255, 0, GT)]  # ids 7, 3, 5 for classes 0, 1, 2
    counts = hungarian_counts(pred, GT, 3)
    assert counts == {"tp": [4, 4, 6], "fp": [0, 0, 0], "fn": [0, 0, 0], "total": 14}  # void pixels ignored
    assert hungarian_scores(**counts) == {"pixel_accuracy": 1.0, "mIoU": 1.0}


def test_an_unmatched_extra_segment_costs_missed_pixels():
    pred = np.array(
        [
            [1, 1, 0, 0],
            [1, 1, 0, 9],  # segment 9 splits class 1; only one segment can be matched to it
            [2, 2, 2, 2],
            [2, 2, 2, 2],
        ]
    )
    counts = hungarian_counts(pred, GT, 3)
    # matched: class 0 <-> segment 1, class 1 <-> segment 0, class 2 <-> segment 2 (segment 9: unmatched)
    assert counts == {"tp": [4, 3, 6], "fp": [0, 0, 0], "fn": [0, 1, 0], "total": 14}
    scores = hungarian_scores(**counts)
    assert scores["pixel_accuracy"] == pytest.approx(13 / 14)
    assert scores["mIoU"] == pytest.approx((1 + 3 / 4 + 1) / 3)


def test_merged_classes_and_dataset_level_accumulation():
    pred = np.where(GT == 1, 0, 0)  # one segment covering everything
    pred[2:, :] = 4
    counts = hungarian_counts(pred, GT, 3)
    # segment 0 (classes 0 and 1, 8 pixels) goes to class 0 or 1 (tie: 4 each); segment 4 to class 2
    assert sorted(counts["tp"][:2]) == [0, 4] and counts["tp"][2] == 6
    assert sum(counts["fp"]) == 4 and sum(counts["fn"]) == 4
    iou_tied = 4 / (4 + 4)  # the matched class of the tie: tp 4, fp 4
    assert hungarian_scores(**counts) == {"pixel_accuracy": 10 / 14, "mIoU": pytest.approx((iou_tied + 0 + 1) / 3)}
    perfect = hungarian_counts(np.where(GT == 255, 0, GT), GT, 3)
    summary = summarize_hungarian([counts, perfect])
    assert summary["hungarian_n"] == 2
    assert summary["hungarian_pixel_accuracy"] == pytest.approx(24 / 28)  # summed counts
    assert summary["hungarian_pixel_accuracy_per_image"] == pytest.approx((10 / 14 + 1) / 2)
    tp = np.add(counts["tp"], perfect["tp"])
    fp = np.add(counts["fp"], perfect["fp"])
    fn = np.add(counts["fn"], perfect["fn"])
    assert summary["hungarian_mIoU"] == pytest.approx(np.mean(tp / (tp + fp + fn)))


def test_fine_to_coarse_table():
    table = fine_to_coarse_table()
    assert len(COARSE_NAMES) == 27
    # person; bicycle..boat = vehicle; the animals; wood = solid; unlabelled stays void
    assert table[0] == COARSE_NAMES.index("person") and set(table[1:9]) == {COARSE_NAMES.index("vehicle")}
    assert set(table[15:25]) == {COARSE_NAMES.index("animal")} and table[181] == COARSE_NAMES.index("solid")
    assert table[255] == 255 and (table[182:] == 255).all()
    assert np.bincount(table[:182], minlength=27).tolist()[:12] == [6, 6, 10, 10, 8, 8, 8, 10, 6, 1, 10, 8]


def test_cocostuff27_loader_maps_fine_ids_and_crops(tmp_path):
    fine = np.full((20, 30), 255, np.uint8)
    fine[:, :15] = 0  # person
    fine[:, 15:] = 156  # sky-other -> sky
    write_cocostuff_layout(tmp_path, ["000000000139", "000000000285"], fine)
    dataset = CocoStuff27Dataset(str(tmp_path), resolution=16)
    assert dataset.item_ids == ["000000000139", "000000000285"] and len(dataset) == 2
    item = dataset[1]
    assert item.image.shape == (3, 16, 16) and item.labels.shape == (20, 20)  # centre crop, native resolution
    person, sky = COARSE_NAMES.index("person"), COARSE_NAMES.index("sky")
    assert (item.labels[:, :10] == person).all() and (item.labels[:, 10:] == sky).all()
    assert item.prompts == ["person", "sky"] and item.mask is None
    assert CocoStuff27Dataset(str(tmp_path), limit=1).item_ids == ["000000000139"]


def test_cocostuff27_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="data.root"):
        CocoStuff27Dataset(str(tmp_path / "missing"))
    write_cocostuff_layout(tmp_path, ["1"], np.full((20, 30), 40, np.uint8))
    with pytest.raises(DataError, match="label 40 >= data.num_classes=27"):
        CocoStuff27Dataset(str(tmp_path), labels="coarse")[0]
    (tmp_path / "images/val2017/1.jpg").unlink()
    with pytest.raises(DataError, match="1.jpg does not exist"):
        CocoStuff27Dataset(str(tmp_path))
