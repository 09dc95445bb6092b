"""Inputs read as the user sees them (EXIF orientation, 16-bit), and every bad input is one message naming it."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from peekaboo.cli import peekaboo_error_in
from peekaboo.data.cocostuff import CocoStuff27Dataset
from peekaboo.data.folder import FolderDataset
from peekaboo.data.image import ImageDataset
from peekaboo.data.refcoco import RefCOCODataset
from peekaboo.data.transforms import read_mask, read_rgb
from peekaboo.errors import DataError

ROTATE_90_CW = 6  # EXIF orientation: the stored pixels are shown rotated 90 degrees clockwise


def with_orientation(array: np.ndarray, path, orientation: int = ROTATE_90_CW):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, exif=exif)
    return path


def test_exif_orientation_is_applied_to_image_and_mask(tmp_path):
    stored = np.zeros((2, 4, 3), np.uint8)  # 4 wide, 2 high as stored
    stored[0, 0] = (255, 0, 0)  # top-left stored pixel: shown top-right after a clockwise turn
    rgb = read_rgb(with_orientation(stored, tmp_path / "i.png"), "item 'x'")
    assert rgb.shape == (4, 2, 3) and tuple(rgb[0, 1]) == (255, 0, 0)
    mask = read_mask(with_orientation(stored[..., 0], tmp_path / "m.png"), "item 'x'")
    assert mask.shape == (4, 2) and mask[0, 1] == 255 and mask.sum() == 255
    item = ImageDataset(str(tmp_path / "i.png"), "a dog", resolution=8, mask=str(tmp_path / "m.png"))[0]
    assert item.mask.shape == (2, 2)  # image and mask turned alike, so they still match in size


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 64], [257 * 128, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    rgb = read_rgb(tmp_path / "g16.png", "item 'x'")
    assert rgb[..., 0].tolist() == [[0, 64], [128, 255]] and (rgb[..., 0] == rgb[..., 2]).all()
    binary = np.array([[0, 65535], [0, 65535]], np.uint16)  # a 16-bit mask using the full range
    Image.fromarray(binary).save(tmp_path / "m16.png")
    assert read_mask(tmp_path / "m16.png", "item 'x'").tolist() == [[0, 255], [0, 255]]
    labels = np.array([[0, 1], [2, 0]], np.uint16)  # a 16-bit label mask keeps its small values
    Image.fromarray(labels).save(tmp_path / "l16.png")
    assert read_mask(tmp_path / "l16.png", "item 'x'").tolist() == [[0, 1], [2, 0]]


def test_an_image_over_the_pixel_limit_is_one_error_naming_the_file(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setenv("PEEKABOO_MAX_IMAGE_PIXELS", "500")
    with pytest.raises(DataError, match=r"item 'x': image .*big.png is 30x20 = 600 pixels, more than the limit of 500"):
        read_rgb(tmp_path / "big.png", "item 'x'")
    monkeypatch.delenv("PEEKABOO_MAX_IMAGE_PIXELS")
    bomb = tmp_path / "bomb.png"  # a valid PNG header claiming 100k x 100k pixels: PIL's own limit is exceeded
    Image.new("1", (1, 1)).save(bomb)
    data = bytearray(bomb.read_bytes())
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the IHDR chunk's checksum
    bomb.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"bomb.png is 100000x100000 = 10000000000 pixels, more than the limit"):
        read_rgb(bomb, "item 'x'")


def test_directories_where_files_belong_say_so(tmp_path):
    with pytest.raises(
        DataError, match=rf"data.path: {tmp_path} is a directory; give one image file, or use data=folder"
    ):
        ImageDataset(str(tmp_path), "a dog")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=r"data.root: .*file is a file, not a directory; it must contain the images"):
        FolderDataset(str(tmp_path / "file"))
    for dataset in (RefCOCODataset, CocoStuff27Dataset):
        with pytest.raises(DataError, match=r"data.root: .*file is a file, not a directory; "):
            dataset(str(tmp_path / "file"))
    (tmp_path / "index.csv").mkdir()
    with pytest.raises(DataError, match=r"data.index: .*index.csv is a directory"):
        FolderDataset(str(tmp_path))


def test_a_csv_index_with_a_byte_order_mark_works(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "index.csv").write_text("image,prompt,id\na.png,a cat,cat\n", encoding="utf-8-sig")
    data = FolderDataset(str(tmp_path), resolution=8)
    assert data.item_ids == ["cat"] and data[0].prompts == ["a cat"]


def test_extra_cells_are_an_error_naming_the_row(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "index.csv").write_text("image,prompt\na.png,a cat\na.png,a dog, on grass\n")
    with pytest.raises(DataError) as err:
        FolderDataset(str(tmp_path))
    assert str(err.value).startswith(f"{tmp_path / 'index.csv'}:3 row 2: 3 cells but the header has 2 columns")


def test_an_unreadable_image_in_a_worker_process_is_the_one_line_message(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "a.png")
    (root / "b.png").write_bytes(b"garbage")
    (root / "index.csv").write_text("image,prompt\na.png,red square\nb.png,red square\n")
    args = [f"data.root={root}", "data=folder", "data.resolution=32", "schedule.iterations=2", "trainer.num_workers=1"]
    args.append("trainer.batch_size=1")  # one item per batch: the item before the bad one is complete
    args.append("trainer.enable_progress_bar=false")
    result = run_cli([*args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "worker" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: item '00001_b': cannot read image {root / 'b.png'} (UnidentifiedImageError: cannot identify image "
        f"file '{root / 'b.png'}')"
    )
    assert (tmp_path / "run" / "items" / "00000_a" / "result.json").is_file()  # the item before it is kept


def test_an_error_in_a_spawned_rank_is_the_one_line_message():
    from torch.multiprocessing import ProcessRaisedException

    trace = (
        "\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n"
        '  File "datamodule.py", line 53, in raise_load_failures\n    raise DataError(entry.message)\n'
        "peekaboo.errors.DataError: item 'b': cannot read image b.png (UnidentifiedImageError: cannot identify)\n"
    )
    found = peekaboo_error_in(ProcessRaisedException(trace, 1, 4242))
    assert str(found) == "item 'b': cannot read image b.png (UnidentifiedImageError: cannot identify)"
    assert peekaboo_error_in(ProcessRaisedException("RuntimeError: a bug\n", 1, 4242)) is None
    assert peekaboo_error_in(KeyError("x")) is None
