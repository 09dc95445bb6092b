"""Datasets: conversion and cropping of any image, ground-truth alignment, and clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose
from peekaboo.data.configs import Resample
from peekaboo.data.folder import FolderDataset
from peekaboo.data.image import ImageDataset
from peekaboo.data.transforms import to_working
from peekaboo.errors import DataError


def save(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_any_mode_and_size_is_converted_and_centre_cropped(tmp_path):
    grey = np.zeros((40, 100), np.uint8)
    grey[:, 40:60] = 200  # a bright band in the middle of the centre square (columns 30..70)
    mask = np.zeros((40, 100), np.uint8)
    mask[:, 40:60] = 255
    item = ImageDataset(
        str(save(tmp_path / "g.png", grey)), "a band", resolution=16, mask=str(save(tmp_path / "m.png", mask))
    )[0]
    assert item.image.shape == (3, 16, 16) and item.image.dtype == torch.float32
    assert float(item.image.min()) >= 0 and float(item.image.max()) <= 1
    assert item.display.shape == (40, 40, 3)  # the crop at native resolution, for overlays and scoring
    assert item.mask.shape == (40, 40) and set(np.unique(item.mask)) == {0, 1}
    assert item.mask[:, :10].sum() == 0 and item.mask[:, 10:30].all()  # cropped identically to the image
    assert item.meta["crop_box"] == [0, 30, 40, 70]
    palette = Image.fromarray(np.zeros((8, 8), np.uint8), mode="P")
    palette.save(tmp_path / "p.png")
    assert ImageDataset(str(tmp_path / "p.png"), "x", resolution=8)[0].image.shape == (3, 8, 8)


def authors_preprocessing(square: np.ndarray) -> np.ndarray:
    """The authors' steps written independently: PIL's float ("F") bilinear resize to 512 (anti-aliased when it
    shrinks), then OpenCV's INTER_LINEAR 512 -> 256, which at exactly half size is the mean of each 2x2 block."""
    channels = [
        Image.fromarray(square[..., c].astype(np.float32) / 255, mode="F").resize((512, 512), Image.BILINEAR)
        for c in range(3)
    ]
    return np.stack([np.asarray(c) for c in channels]).reshape(3, 256, 2, 256, 2).mean((2, 4))


@pytest.mark.parametrize("side", [700, 300, 512])  # shrunk (anti-aliasing matters), enlarged, unchanged
def test_original_resample_is_the_authors_preprocessing_in_float(side):
    square = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    ours = to_working(square, 256, Resample.original)
    assert ours.dtype == torch.float32 and ours.shape == (3, 256, 256)
    assert np.abs(ours.numpy() - authors_preprocessing(square)).max() < 1e-6
    off_grid = (ours * 255 - (ours * 255).round()).abs() > 1e-3  # kept in float, not rounded to uint8 levels
    assert off_grid.float().mean() > 0.5
    bicubic = to_working(square, 256, Resample.bicubic)
    assert ((bicubic * 255 - (bicubic * 255).round()).abs() < 1e-4).all()  # the other choice is uint8 levels
    if side == 700:
        assert 0.01 < float((ours - bicubic).abs().mean()) < 0.1  # a real difference, not a relabelling


def test_resample_reaches_the_image_every_dataset_returns(tmp_path):
    square = np.random.default_rng(1).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    path = str(save(tmp_path / "i.png", square))
    for resample in Resample:
        image = ImageDataset(path, "x", resample=resample.value)[0].image
        assert torch.equal(image, to_working(square, 256, resample))
    (tmp_path / "index.csv").write_text("image,prompt\ni.png,x\n")
    assert torch.equal(FolderDataset(str(tmp_path))[0].image, to_working(square, 256, Resample.original))


def test_resample_defaults_to_the_authors_and_a_typo_names_the_key():
    for data in ("image", "folder", "voc_c", "refcoco", "refcoco_c"):
        assert compose([f"data={data}"]).data.resample is Resample.original
    assert compose(["data=cocostuff27"]).data.resample is Resample.bicubic  # DiffSeg's data
    with pytest.raises(Exception, match="resample"):
        compose(["data=image", "data.resample=bilinear"])


def test_void_pixels_are_kept_when_asked(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[2:5, 2:5] = 1
    mask[0, :] = 255
    image = save(tmp_path / "i.png", np.zeros((10, 10, 3), np.uint8))
    m = str(save(tmp_path / "m.png", mask))
    assert (ImageDataset(str(image), "x", resolution=8, mask=m, void=True)[0].mask[0] == 255).all()
    assert (ImageDataset(str(image), "x", resolution=8, mask=m, void=False)[0].mask[0] == 1).all()


def test_folder_index_csv_and_json_with_several_prompts(tmp_path):
    for name in ("a", "b"):
        save(tmp_path / f"{name}.png", np.full((12, 12, 3), 90, np.uint8))
    (tmp_path / "index.csv").write_text("image,prompt\na.png,a cat|a hat\nb.png,a dog\n")
    data = FolderDataset(str(tmp_path), resolution=8)
    assert data.item_ids == ["00000_a", "00001_b"] and data[0].prompts == ["a cat", "a hat"]
    (tmp_path / "index.json").write_text('[{"image": "b.png", "prompt": ["x", "y"], "id": "bee"}]')
    data = FolderDataset(str(tmp_path), index="index.json", resolution=8)
    assert data.item_ids == ["bee"] and data[0].prompts == ["x", "y"]


@pytest.mark.parametrize(
    "index,message",
    [
        ("image,prompt\na.png,\n", "row 1 has no prompt"),
        ("image,prompt\nmissing.png,a cat\n", "missing.png does not exist"),
        ("image\na.png\n", "row 1 has no prompt"),
        ("", "lists no items"),
    ],
)
def test_folder_errors_name_the_file_and_row(tmp_path, index, message):
    save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "index.csv").write_text(index)
    with pytest.raises(DataError, match=message) as err:
        FolderDataset(str(tmp_path))
    assert "index.csv" in str(err.value)


def test_image_errors_name_the_key(tmp_path):
    with pytest.raises(DataError, match="data.path"):
        ImageDataset("", "a cat")
    image = save(tmp_path / "i.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="data.prompt"):
        ImageDataset(str(image), "  ")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="item 'bad'.*cannot read image"):
        ImageDataset(str(tmp_path / "bad.png"), "a cat")[0]
    with pytest.raises(DataError, match="data.root.*does not exist"):
        FolderDataset(str(tmp_path / "nope"))
