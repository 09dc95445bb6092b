"""The Python API on the toy world: masks in the input's frame, overrides, progress, errors, the quickstart."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from peekaboo import Peekaboo, SegmentationResult, segment
from peekaboo.errors import ConfigError, DataError, ModelLoadError
from peekaboo.io.rle import decode_rle
from peekaboo.toy.scenes import make_scene

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"schedule.iterations": 8, "schedule.timelapse_every": 4}


def toy_picture(seed: int = 3, side: int = 64, margin: int = 16) -> tuple[np.ndarray, np.ndarray, str]:
    """A toy scene enlarged to ``side`` and centred in a (side, side + 2 margin) black picture, its ground truth
    in the picture's frame, and its prompt."""
    scene = make_scene(seed, 32, 1, "blobs")
    tile = Image.fromarray(np.uint8((scene.image.transpose(1, 2, 0) + 1) / 2 * 255)).resize((side, side), 0)
    picture = np.zeros((side, side + 2 * margin, 3), np.uint8)
    picture[:, margin : margin + side] = np.asarray(tile)
    truth = np.zeros(picture.shape[:2], bool)
    truth[:, margin : margin + side] = np.asarray(Image.fromarray(scene.mask * 255).resize((side, side), 0)) > 0
    return picture, truth, scene.prompt


@pytest.fixture(scope="module")
def pk():
    return Peekaboo("toy", device="cpu")


def test_segment_finds_the_object_at_the_input_size(pk):
    picture, truth, prompt = toy_picture()
    result = pk.segment(picture, prompt)
    assert isinstance(result, SegmentationResult) and result.prompts == [prompt]
    assert result.masks.shape == result.alphas.shape == (1, 64, 96)
    assert result.masks.dtype == bool and result.alphas.dtype == np.float32
    assert result.iterations == 200 and result.working_alphas.shape == (1, 32, 32)  # the toy world's size
    assert result.crop_box == (0, 16, 64, 80)
    iou = (result.masks[0] & truth).sum() / (result.masks[0] | truth).sum()
    assert iou > 0.8, iou
    assert not result.alphas[:, :, :16].any() and not result.masks[:, :, 80:].any()  # outside the crop: 0
    assert np.array_equal(result.image, picture)
    rgba = result.rgba(0)
    assert rgba.shape == (64, 96, 4) and np.array_equal(rgba[..., :3], picture)
    assert np.abs(rgba[..., 3] / 255 - result.alphas[0]).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(decode_rle(result.rle()[0]), result.masks[0])
    assert isinstance(result.rle()[0]["counts"], str)
    assert result.overlay().shape == (64, 96, 3)


def test_path_pil_uint8_and_float_inputs_agree_and_exif_orientation_is_applied(pk, tmp_path):
    picture, _, prompt = toy_picture()
    upright = pk.segment(picture, prompt, **QUICK)
    as_float = pk.segment(picture.astype(np.float32) / 255, prompt, **QUICK)
    as_pil = pk.segment(Image.fromarray(picture), prompt, **QUICK)
    assert np.array_equal(upright.alphas, as_float.alphas) and np.array_equal(upright.alphas, as_pil.alphas)
    # Stored rotated by 90 degrees with EXIF orientation 6 ("rotate 90 CW to view"): results come back upright.
    stored = Image.fromarray(np.rot90(picture, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.png"
    stored.save(path, exif=exif)
    from_file = pk.segment(path, prompt, **QUICK)
    assert from_file.masks.shape == (1, 64, 96)
    assert np.array_equal(from_file.image, picture) and np.array_equal(from_file.alphas, upright.alphas)


def test_per_call_overrides_rebuild_only_what_changes_and_progress_sees_frames(pk):
    picture, _, prompt = toy_picture()
    calls = []
    result = pk.segment(
        picture,
        [prompt, "circle"],
        progress=lambda done, total, alphas: calls.append((done, total, None if alphas is None else alphas.shape)),
        param="raster",
        **QUICK,
    )
    assert result.iterations == 8 and result.masks.shape == (2, 64, 96)
    assert [c[0] for c in calls] == list(range(1, 9)) and {c[1] for c in calls} == {8}
    assert [c[0] for c in calls if c[2] is not None] == [1, 5]  # frames at iterations 0 and 4
    assert {c[2] for c in calls if c[2] is not None} == {(2, 32, 32)}
    before = len(pk._built)
    pk.segment(picture, prompt, param="raster", **{"schedule.iterations": 2})
    assert len(pk._built) == before  # the schedule is read per call: nothing rebuilt


def test_errors_name_the_key_and_hint_stable_diffusion(pk, tmp_path):
    picture, _, _ = toy_picture()
    with pytest.raises(DataError, match="model=sd15"):
        pk.segment(picture, "a dog")
    with pytest.raises(ConfigError) as err:
        Peekaboo("toy", {"schedule.iterationz": 3})
    assert err.value.key == "schedule.iterationz"
    with pytest.raises(ConfigError) as err:
        Peekaboo("toy", ["loss.lambda_alpha=-1", "param=rastr"])
    assert err.value.key == "param"
    with pytest.raises(ConfigError) as err:
        Peekaboo("not_a_model")
    assert err.value.key == "model" and "sd15" in str(err.value)
    with pytest.raises(ModelLoadError):
        Peekaboo(tmp_path)  # an empty folder as a local Stable Diffusion: the loader's clear error
    with pytest.raises(DataError, match="shape"):
        pk.segment(np.zeros((4, 4, 5), np.uint8), "circle")
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        pk.segment(np.full((8, 8, 3), 2.0), "circle")


def test_generate_rgba_and_the_one_shot_function():
    generated = Peekaboo("toy").generate_rgba("red circle", **{"schedule.iterations": 3})
    assert generated.prompt == "red circle" and generated.rgba.shape == (32, 32, 4)
    assert generated.rgba.dtype == np.uint8
    picture, _, prompt = toy_picture()
    first = segment(picture, prompt, **QUICK)
    again = segment(picture, prompt, **QUICK)  # same seed and config: the same mask, from the cached models
    assert np.array_equal(first.alphas, again.alphas)


def test_quickstart_notebook_runs(monkeypatch):
    """Every code cell of examples/quickstart.ipynb, in order, in one namespace (as a kernel would run them)."""
    import matplotlib

    matplotlib.use("Agg")
    notebook = json.loads((ROOT / "examples" / "quickstart.ipynb").read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), namespace)
    assert namespace["result"].masks.shape == (1, 128, 192)
    assert len(namespace["frames"]) == 5  # schedule.timelapse_every=10 over 50 iterations
    assert namespace["generated"].rgba.shape == (32, 32, 4)
