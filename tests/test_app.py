"""The web demo's logic (peekaboo.app.logic) on the toy world, without gradio or a browser."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.ndimage import binary_erosion

from peekaboo.app import logic
from peekaboo.errors import ConfigError, DataError, ModelLoadError, PeekabooError

ITERATIONS = 100


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return (pred & gt).sum() / (pred | gt).sum()


def drain(job):
    """Every progress update of a logic generator, and its return value."""
    updates = []
    while True:
        try:
            updates.append(next(job))
        except StopIteration as finished:
            return updates, finished.value


@pytest.fixture(scope="module")
def red_circle():
    return logic.toy_example(0, "red circle")


@pytest.fixture(scope="module")
def segmented(red_circle):
    image, _ = red_circle
    return drain(logic.segment(image, "red circle", "toy", None, "raster_bilateral", ITERATIONS))


def test_parse_prompts_splits_on_commas_and_newlines():
    assert logic.parse_prompts(" red circle,blue square\n\n yellow triangle ,") == [
        "red circle",
        "blue square",
        "yellow triangle",
    ]
    with pytest.raises(DataError, match="no prompt"):
        logic.parse_prompts(" ,\n ")


def test_missing_inputs_are_named():
    image, _ = logic.toy_example(0)
    with pytest.raises(DataError, match="no image: upload an image"):
        next(logic.segment(None, "red circle", "toy"))
    with pytest.raises(DataError, match="no prompt"):
        next(logic.segment(image, "", "toy"))
    with pytest.raises(ModelLoadError, match="no Stable Diffusion folder"):
        next(logic.segment(image, "red circle", logic.SD_FOLDER, "  "))
    with pytest.raises(DataError, match="iterations must be at least 1"):
        next(logic.segment(image, "red circle", "toy", iterations=0))
    with pytest.raises(DataError, match="no prompt"):
        next(logic.generate_rgba(" ", "toy"))


def test_segment_finds_the_toy_target_and_streams_frames(segmented, red_circle):
    updates, result = segmented
    _, truth = red_circle
    assert result.masks.shape == (1, *truth.shape)
    assert iou(result.masks[0], truth) > 0.8
    assert [u.iteration for u in updates][-1] == ITERATIONS
    assert all(u.total == ITERATIONS for u in updates)
    frames = [u.alphas for u in updates if u.alphas is not None]
    assert len(frames) >= 2  # a live timelapse, not just the final mask
    assert frames[0].shape == (1, 32, 32)


def test_downloads_hold_the_masks(segmented, tmp_path):
    _, result = segmented
    paths = logic.write_segmentation(result, tmp_path)
    assert [path.name for path in paths] == ["mask_0_red_circle.png", "cutout_0_red_circle.png", "masks_rle.json"]
    np.testing.assert_array_equal(np.asarray(Image.open(paths[0])) > 127, result.masks[0])
    cutout = np.asarray(Image.open(paths[1]))
    assert cutout.shape == (*result.masks.shape[1:], 4)
    np.testing.assert_array_equal(cutout[..., :3], result.image)
    assert cutout[..., 3][result.masks[0]].mean() > 127 > cutout[..., 3][~result.masks[0]].mean()
    records = json.loads(paths[2].read_text())
    assert [record["prompt"] for record in records] == ["red circle"]
    decoded = mask_utils.decode([records[0]["segmentation"]])[..., 0]
    np.testing.assert_array_equal(decoded.astype(bool), result.masks[0])


def test_spotlight_dims_outside_each_mask_and_outlines_it(red_circle):
    image, truth = red_circle
    masks = np.stack([truth, ~truth]).astype(np.float32)
    tiles = logic.spotlight(image, masks)
    side = logic.DISPLAY_HEIGHT
    assert tiles.shape == (side, 2 * side + logic.GAP, 3)
    scaled_truth = np.asarray(Image.fromarray(truth).resize((side, side))).astype(bool)
    first = tiles[:, :side].astype(float)
    scaled = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR)).astype(float)
    interior = binary_erosion(scaled_truth, iterations=4)
    exterior = binary_erosion(~scaled_truth, iterations=4)
    np.testing.assert_allclose(first[interior], scaled[interior], atol=1)  # the object keeps its colours
    np.testing.assert_allclose(first[exterior], logic.DIM * scaled[exterior], atol=1)  # the rest is dimmed
    outline = (first == logic.OVERLAY_COLOURS[0]).all(-1)
    assert outline.sum() > 0 and not (outline & exterior).any()
    second = tiles[:, side + logic.GAP :]
    assert (second == logic.OVERLAY_COLOURS[1]).all(-1).sum() > 0  # each prompt outlined in its own colour


def test_preview_shows_the_working_crop_of_a_wide_image():
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 200  # the centre square, which the API crops to
    tile = logic.preview(wide, np.ones((1, 8, 8), np.float32))
    assert tile.shape == (logic.DISPLAY_HEIGHT, logic.DISPLAY_HEIGHT, 3)
    assert tile[3:-3, 3:-3].min() == 200  # inside the outline: the crop, undimmed


def test_out_of_vocabulary_prompt_gets_the_toy_vocabulary(red_circle):
    image, _ = red_circle
    with pytest.raises(DataError) as caught:
        drain(logic.segment(image, "red circle, purple elephant", "toy", iterations=5))
    message = logic.describe_error(caught.value)
    assert "purple elephant" in message and "valid prompts" in message


def test_missing_weights_are_reported_by_name(red_circle, tmp_path):
    image, _ = red_circle
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as caught:
        drain(logic.segment(image, "a dog", logic.SD_FOLDER, str(missing), iterations=5))
    assert str(missing) in logic.describe_error(caught.value)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelLoadError) as caught:
        drain(logic.segment(image, "a dog", logic.SD_FOLDER, str(empty), iterations=5))
    assert f"could not load Stable Diffusion weights '{empty}'" in logic.describe_error(caught.value)


def test_generate_rgba_draws_the_prompt(tmp_path):
    updates, result = drain(logic.generate_rgba("red circle", "toy", iterations=60))
    assert updates[-1].iteration == 60
    assert any(u.alphas is not None for u in updates)
    rgba = result.rgba
    opaque = rgba[..., 3] > 127
    assert 0.02 < opaque.mean() < 0.9  # an object, not an empty or full canvas
    red, green, blue = rgba[opaque][:, :3].astype(float).mean(0)
    assert red > green + 60 and red > blue + 60
    path = logic.write_rgba(result, tmp_path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), rgba)


def test_unexpected_errors_are_named_without_a_traceback(caplog):
    message = logic.describe_error(KeyError("alpha"))
    assert message == "unexpected KeyError: 'alpha' (the server log has the details)"
    assert "unexpected error in the web demo" in caplog.text
    assert logic.describe_error(DataError("no image: upload one")) == "no image: upload one"
    assert issubclass(ModelLoadError, PeekabooError)


def test_run_in_thread_merges_reports_and_reraises_errors():
    def job(report):
        for i in range(1, 4):
            report(i, 3, np.full((1, 2, 2), i, np.float32) if i == 2 else None)
        raise DataError("broken item")

    stream = logic.run_in_thread(job)
    updates = []
    with pytest.raises(DataError, match="broken item"):
        for update in stream:
            updates.append(update)
    assert updates[-1].iteration == 3
    assert [u.alphas[0, 0, 0] for u in updates if u.alphas is not None] == [2.0]


def test_closing_the_stream_cancels_the_job():
    stopped = threading.Event()

    def job(report):
        try:
            for i in range(10_000):
                report(i, 10_000, None)
                time.sleep(0.01)
        finally:
            stopped.set()

    stream = logic.run_in_thread(job)
    next(stream)
    stream.close()
    assert stopped.wait(5), "the job kept running after the page went away"


def test_stop_flag_ends_a_segmentation_with_cancelled(red_circle):
    image, _ = red_circle
    stop = threading.Event()
    job = logic.segment(image, "red circle", "toy", iterations=10_000, stop=stop)
    first = next(job)
    stop.set()
    with pytest.raises(logic.Cancelled):
        drain(job)
    assert first.total == 10_000


def test_small_results_are_enlarged_for_display():
    rgba = np.arange(32 * 32 * 4, dtype=np.uint32).reshape(32, 32, 4).astype(np.uint8)
    shown = logic.enlarged(rgba)
    factor = -(-logic.DISPLAY_HEIGHT // 32)
    assert shown.shape == (32 * factor, 32 * factor, 4)
    np.testing.assert_array_equal(shown[::factor, ::factor], rgba)
    large = np.zeros((512, 512, 4), np.uint8)
    assert logic.enlarged(large) is large


def test_warm_up_builds_the_model_once_and_only_logs_failures(caplog, tmp_path):
    logic.warm_up("toy")
    assert logic.peekaboo_for("toy") is logic.peekaboo_for("toy")
    logic.warm_up(str(tmp_path / "missing"))  # must not raise: the page reports it when the model is used
    assert f"could not prepare model '{tmp_path / 'missing'}'" in caplog.text
