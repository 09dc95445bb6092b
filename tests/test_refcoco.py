"""data=refcoco on a tiny refer dataset written here in the real formats: refs(unc).p, instances.json, COCO jpgs."""

import json
import pickle

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from peekaboo.data.refcoco import RefCOCODataset
from peekaboo.errors import DataError


def uncompressed_rle(mask):
    """COCO's uncompressed RLE: run lengths of the column-major mask, starting with a run of zeros."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + runs}


@pytest.fixture
def refer(tmp_path):
    root, images = tmp_path / "refer", tmp_path / "train2014"
    (root / "refcoco").mkdir(parents=True)
    images.mkdir()
    for image_id, (h, w) in ((1, (60, 80)), (2, (50, 50))):
        rgb = np.random.default_rng(image_id).integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(images / f"COCO_train2014_{image_id:012d}.jpg")
    circle = np.zeros((50, 50), np.uint8)
    circle[(np.arange(50)[:, None] - 25) ** 2 + (np.arange(50)[None] - 20) ** 2 < 100] = 1
    crowd = np.zeros((60, 80), np.uint8)
    crowd[5:15, 50:75] = 1
    compressed = mask_utils.encode(np.asfortranarray(circle))
    compressed["counts"] = compressed["counts"].decode()  # as stored in JSON
    instances = {
        "images": [
            {"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "height": 60, "width": 80},
            {"id": 2, "file_name": "COCO_train2014_000000000002.jpg", "height": 50, "width": 50},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 3,
                "bbox": [10, 20, 30, 20],
                "segmentation": [[10, 20, 40, 20, 40, 40, 10, 40]],
            },
            {"id": 11, "image_id": 2, "category_id": 3, "bbox": [10, 15, 20, 20], "segmentation": compressed},
            {
                "id": 12,
                "image_id": 1,
                "category_id": 1,
                "bbox": [50, 5, 25, 10],
                "iscrowd": 1,
                "segmentation": uncompressed_rle(crowd),
            },
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    (root / "refcoco" / "instances.json").write_text(json.dumps(instances))

    def ref(ref_id, ann_id, image_id, split, *sentences):
        sents = [
            {"sent_id": ref_id * 10 + k, "sent": s, "raw": s.upper(), "tokens": s.split()}
            for k, s in enumerate(sentences)
        ]
        return {
            "ref_id": ref_id,
            "ann_id": ann_id,
            "image_id": image_id,
            "split": split,
            "sentences": sents,
            "sent_ids": [s["sent_id"] for s in sents],
            "category_id": 3,
            "file_name": "x.jpg",
        }

    refs = [
        ref(100, 10, 1, "val", "left car", "the grey one"),
        ref(101, 11, 2, "testA", "round thing"),
        ref(102, 12, 1, "val", "people top right"),
        ref(103, 10, 1, "train", "car"),
    ]
    with (root / "refcoco" / "refs(unc).p").open("wb") as handle:
        pickle.dump(refs, handle, protocol=2)
    return {"root": root, "images": images, "circle": circle, "crowd": crowd, "instances": instances}


def test_one_item_per_sentence_with_polygon_and_rle_masks(refer):
    data = RefCOCODataset(str(refer["root"]), split="val", images=str(refer["images"]), resolution=16)
    assert data.item_ids == ["ref100_sent1000", "ref100_sent1001", "ref102_sent1020"]
    first, second, crowd = data[0], data[1], data[2]
    assert (
        first.prompts == ["left car"] and second.prompts == ["the grey one"] and crowd.prompts == ["people top right"]
    )
    assert first.meta["ref_id"] == 100 and first.meta["ann_id"] == 10 and first.meta["category"] == "car"
    assert first.mask.shape == (60, 80) and tuple(first.image.shape) == (3, 16, 16)
    polygon = np.zeros((60, 80), np.uint8)
    polygon[20:40, 10:40] = 1  # the polygon's rectangle, up to pycocotools' edge convention
    overlap = (first.mask & polygon).sum() / (first.mask | polygon).sum()
    assert overlap > 0.9 and first.mask[:19].sum() == 0 and first.mask[:, :9].sum() == 0
    assert np.array_equal(crowd.mask, refer["crowd"])  # uncompressed RLE, exactly
    test_a = RefCOCODataset(str(refer["root"]), split="testA", images=str(refer["images"]))
    assert np.array_equal(test_a[0].mask, refer["circle"])  # compressed RLE, exactly
    raw = RefCOCODataset(str(refer["root"]), split="testA", images=str(refer["images"]), sentence="raw")
    assert raw[0].prompts == ["ROUND THING"]


def test_box_crop_is_a_square_around_the_referred_object(refer):
    data = RefCOCODataset(str(refer["root"]), images=str(refer["images"]), crop="box", margin=0.25)
    item = data[2]  # bbox x 50..75, y 5..15: side round(25 * 1.5) = 38, centred at (62.5, 10), shifted inside
    assert item.meta["crop_box"] == [0, 42, 38, 80]
    assert item.display.shape == (38, 38, 3) and np.array_equal(item.mask, refer["crowd"][0:38, 42:80])


def test_unknown_split_lists_the_splits(refer):
    with pytest.raises(DataError, match=r"no ref in split 'testB'; its splits: testA \(1 refs\), train \(1 refs\)"):
        RefCOCODataset(str(refer["root"]), split="testB", images=str(refer["images"]))


def test_malformed_annotation_names_file_annotation_and_ref(refer):
    refer["instances"]["annotations"][0]["segmentation"] = [[10, 20, 40, 20, 40]]
    (refer["root"] / "refcoco" / "instances.json").write_text(json.dumps(refer["instances"]))
    with pytest.raises(DataError) as err:
        RefCOCODataset(str(refer["root"]), images=str(refer["images"]))
    message = str(err.value)
    assert "instances.json: annotation 10 (ref 100)" in message and "polygon 0 has 5 coordinates" in message
    refer["instances"]["annotations"][0]["segmentation"] = {"size": [60, 80], "counts": [5, 3]}
    (refer["root"] / "refcoco" / "instances.json").write_text(json.dumps(refer["instances"]))
    with pytest.raises(DataError, match=r"annotation 10 \(ref 100\).*summing to 60x80"):
        RefCOCODataset(str(refer["root"]), images=str(refer["images"]))


def test_missing_paths_say_what_they_must_contain(refer, tmp_path):
    with pytest.raises(DataError, match=r"data.root: directory .*nowhere does not exist; data.root must be the refer"):
        RefCOCODataset(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"refs\(umd\).p does not exist .*holding <dataset>/refs\(<split_by>\).p"):
        RefCOCODataset(str(refer["root"]), split_by="umd", images=str(refer["images"]))
    with pytest.raises(DataError, match=r"data.images: directory .* must hold the COCO train2014 images"):
        RefCOCODataset(str(refer["root"]))  # default: <root>/images/mscoco/images/train2014
    (refer["images"] / "COCO_train2014_000000000001.jpg").unlink()
    with pytest.raises(DataError, match=r"COCO_train2014_000000000001.jpg \(ref 100, image 1\) does not exist"):
        RefCOCODataset(str(refer["root"]), images=str(refer["images"]))
