"""Outputs in the user's frame: a plain folder of photos (one data.prompt, no index), masks at each photo's size and
orientation (0 outside the working crop), the overlay on the original, COCO RLE in masks.json."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from peekaboo.errors import DataError
from peekaboo.io.rle import decode_rle
from peekaboo.toy.scenes import make_scene


def toy_photo(seed: int, height: int, width: int) -> np.ndarray:
    """A toy scene with a red circle, enlarged into the centre square of a (height, width) black photo."""
    scene = make_scene(seed, 32, 1, "blobs", target="red circle")
    side = min(height, width)
    tile = Image.fromarray(np.uint8((scene.image.transpose(1, 2, 0) + 1) / 2 * 255)).resize((side, side), 0)
    photo = np.zeros((height, width, 3), np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    photo[top : top + side, left : left + side] = np.asarray(tile)
    return photo


def test_plain_folder_writes_masks_at_each_photos_size_and_orientation(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(toy_photo(1, 64, 96)).save(photos / "wide.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise, to 96x64 (tall)
    Image.fromarray(np.rot90(toy_photo(2, 96, 64), 1)).save(photos / "tall.png", exif=exif)
    (photos / "notes.txt").write_text("not an image")
    result = run_cli(
        [
            "data=folder",
            f"data.root={photos}",
            "data.prompt=red circle",
            "task.rle=true",
            "schedule.iterations=4",
            "schedule.timelapse_every=0",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    items = tmp_path / "run" / "items"
    assert sorted(p.name for p in items.iterdir()) == ["00000_tall", "00001_wide"]
    for item, (height, width), box in (
        ("00001_wide", (64, 96), (0, 16, 64, 80)),
        ("00000_tall", (96, 64), (16, 0, 80, 64)),
    ):
        record = json.loads((items / item / "result.json").read_text())
        assert record["meta"]["crop_box"] == list(box) and record["meta"]["image_size"] == [height, width]
        assert Image.open(items / item / "alpha.png").size == (32, 32)  # the toy world's working size
        alpha = np.asarray(Image.open(items / item / "alpha_full.png"))
        mask = np.asarray(Image.open(items / item / "mask_full.png")) > 127
        assert alpha.shape == mask.shape == (height, width)
        top, left, bottom, right = box
        outside = np.ones((height, width), bool)
        outside[top:bottom, left:right] = False
        assert alpha.min() == 0 and not alpha[outside].any() and not mask[outside].any()
        assert alpha[~outside].min() > 0  # a soft map inside the crop
        assert Image.open(items / item / "overlay_full.png").size == (width, height)
        rles = json.loads((items / item / "masks.json").read_text())
        assert rles["frame"] == "original" and [m["prompt"] for m in rles["masks"]] == ["red circle"]
        assert np.array_equal(decode_rle(rles["masks"][0]), mask)


def test_plain_folder_errors_say_what_to_do(tmp_path):
    from peekaboo.data.folder import FolderDataset

    with pytest.raises(DataError, match="no image files"):
        FolderDataset(str(tmp_path), prompt="a dog")
    with pytest.raises(DataError, match="data.prompt"):
        FolderDataset(str(tmp_path))
