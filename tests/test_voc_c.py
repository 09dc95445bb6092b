"""VOC-C: the builder on a tiny VOC2012 devkit written here in the real format, and the data=voc_c loader."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from peekaboo.data.build_voc_c import BuildVOCCConfig, build_voc_c, main, parse_args
from peekaboo.data.voc_c import VOCCDataset
from peekaboo.errors import DataError

CAR, MOTORBIKE, PERSON = 7, 14, 15


def palette_png(path, indices):
    image = Image.fromarray(indices.astype(np.uint8))
    image.putpalette([v for k in range(256) for v in (k * 37 % 256, k * 91 % 256, k * 53 % 256)])
    image.save(path)


def add_image(root, image_id, objects, size=(200, 300)):
    """objects: (class, top, left, bottom, right); each gets a 1-pixel void (255) ring as in VOC."""
    classes, instances = np.zeros(size, np.uint8), np.zeros(size, np.uint8)
    for number, (cls, top, left, bottom, right) in enumerate(objects, start=1):
        for layer, value in ((classes, cls), (instances, number)):
            layer[top - 1 : bottom + 1, left - 1 : right + 1] = 255
            layer[top:bottom, left:right] = value
    rgb = np.random.default_rng(len(image_id)).integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
    palette_png(root / "SegmentationClass" / f"{image_id}.png", classes)
    palette_png(root / "SegmentationObject" / f"{image_id}.png", instances)


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    # one large car (150x180), a small person and a small second car inside the crop
    add_image(root, "2008_000001", [(CAR, 30, 50, 180, 230), (PERSON, 10, 250, 30, 270), (CAR, 150, 20, 190, 45)])
    add_image(root, "2008_000002", [(CAR, 10, 10, 150, 140), (PERSON, 20, 150, 190, 290)])  # two large: skipped
    add_image(root, "2008_000003", [(CAR, 10, 10, 100, 100)])  # none large: skipped
    add_image(root, "2008_000004", [(MOTORBIKE, 20, 20, 160, 160)], size=(180, 180))
    (root / "ImageSets/Segmentation/val.txt").write_text("2008_000001\n2008_000002\n2008_000003\n2008_000004\n")
    (root / "ImageSets/Segmentation/train.txt").write_text("2008_000003\n")
    return root


def test_builder_selects_single_subjects_and_crops_squares(voc, tmp_path):
    info = build_voc_c(BuildVOCCConfig(voc_root=str(voc.parent), out=str(tmp_path / "out")))  # VOCdevkit works too
    assert info["items"] == 2 and info["skipped"] == {"several large objects": 1, "no large object": 1}
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open()))
    assert [(r["id"], r["class"], r["prompt"]) for r in rows] == [
        ("2008_000001", "car", "car"),
        ("2008_000004", "motorbike", "motorcycle"),  # the original's rename
    ]
    # subject 150x180 at (30, 50): side round(180 * 1.2) = 216 capped at the 200-pixel height; centred at x = 140
    assert rows[0]["box"] == "40 0 240 200" and rows[0]["subject_box"] == "50 30 230 180"
    crop = np.asarray(Image.open(tmp_path / "out" / rows[0]["image"]))
    source = np.asarray(Image.open(voc / "JPEGImages" / "2008_000001.jpg").convert("RGB"))
    assert np.array_equal(crop, source[0:200, 40:240])  # lossless crop of the decoded JPEG
    mask = np.asarray(Image.open(tmp_path / "out" / rows[0]["mask"]))
    assert mask.shape == (200, 200) and set(np.unique(mask)) == {0, 1, 255}
    assert mask[100, 100] == 1 and mask[29, 100] == 255 and mask[5, 5] == 0  # subject, void ring, background
    assert mask[160, 0:5].tolist() == [1] * 5  # the small second car (x 20..45 -> 0..5 in the crop) is class pixels
    assert (mask == 1).sum() == 150 * 180 + 40 * 5
    assert json.loads((tmp_path / "out" / "build_info.json").read_text())["per_class"] == {"car": 1, "motorbike": 1}


def test_instance_ground_truth_voids_other_objects_of_the_class(voc, tmp_path):
    build_voc_c(BuildVOCCConfig(voc_root=str(voc), out=str(tmp_path / "out"), gt="instance", renames="natural"))
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "2008_000001.png"))
    assert mask[160, 0:5].tolist() == [255] * 5 and (mask == 1).sum() == 150 * 180
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open()))
    assert rows[1]["prompt"] == "motorcycle"


def test_loader_reads_the_manifest(voc, tmp_path):
    build_voc_c(BuildVOCCConfig(voc_root=str(voc), out=str(tmp_path / "out")))
    data = VOCCDataset(str(tmp_path / "out"), resolution=32, renames={"car": "a photo of a car"})
    assert data.item_ids == ["2008_000001", "2008_000004"]
    item = data[0]
    assert item.prompts == ["a photo of a car"] and item.index == 0
    assert (
        tuple(item.image.shape) == (3, 32, 32) and item.mask.shape == (200, 200) and item.display.shape == (200, 200, 3)
    )
    assert set(np.unique(item.mask)) == {0, 1, 255}  # void kept for scoring
    assert item.meta["class"] == "car" and item.meta["box"] == "40 0 240 200"
    assert data[1].prompts == ["motorcycle"]


def test_cli_builds_and_reports_bad_arguments(voc, tmp_path, capsys):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "peekaboo.data.build_voc_c",
            f"voc_root={voc}",
            f"out={tmp_path / 'out'}",
            "min_size=90",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "3 items from 4 images" in result.stdout  # min_size=90 lets the 90x90 car of the third image in
    with pytest.raises(SystemExit) as exit_info:
        main([f"voc_root={voc}"])
    assert exit_info.value.code == 2 and "out" in capsys.readouterr().err
    with pytest.raises(DataError, match="min_sise"):
        parse_args([f"voc_root={voc}", "out=x", "min_sise=3"])


def test_missing_directories_say_what_they_must_contain(voc, tmp_path):
    (voc / "SegmentationObject").rename(voc / "elsewhere")
    with pytest.raises(DataError, match=r"has no SegmentationObject/ \(instance-index palette PNGs"):
        build_voc_c(BuildVOCCConfig(voc_root=str(voc), out=str(tmp_path / "out")))
    with pytest.raises(DataError, match="does not exist"):
        build_voc_c(BuildVOCCConfig(voc_root=str(tmp_path / "nowhere"), out=str(tmp_path / "out")))
    with pytest.raises(DataError, match=r"has no manifest.csv.*build_voc_c"):
        VOCCDataset(str(tmp_path))


def test_malformed_annotations_name_the_file_and_entry(voc, tmp_path):
    out = str(tmp_path / "out")
    bad = voc / "SegmentationObject" / "2008_000004.png"
    Image.open(bad).convert("RGB").save(bad)  # a colour rendering instead of indices
    with pytest.raises(DataError) as err:
        build_voc_c(BuildVOCCConfig(voc_root=str(voc), out=out))
    assert str(bad) in str(err.value) and "2008_000004" in str(err.value) and "palette" in str(err.value)
    instances = np.zeros((200, 300), np.uint8)
    instances[5:9, 5:9] = 3  # an object on background pixels: the annotations disagree
    palette_png(voc / "SegmentationObject" / "2008_000003.png", instances)
    with pytest.raises(DataError, match=r"2008_000003.png: image 2008_000003, object 3: its pixels carry no class"):
        build_voc_c(BuildVOCCConfig(voc_root=str(voc), out=out))
    assert not (tmp_path / "out" / "manifest.csv").exists()  # no half-finished build looks finished
