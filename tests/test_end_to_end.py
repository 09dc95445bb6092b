"""run.py on tiny_sd, as a user runs it: every promised file, sweeps, seeding and resumption."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

ITEM_FILES = (
    *("alpha.png", "mask.png", "overlay.png", "alpha.npy", "result.json", "timelapse.gif", "history.csv"),
    *("alpha_full.png", "mask_full.png", "overlay_full.png"),  # in the input image's frame (64x48)
)


@pytest.fixture(scope="module")
def image_files(dog_image):
    return dog_image


def tiny(image_files, *extra):
    return [
        "model=tiny_sd",
        "data=image",
        f"data.path={image_files / 'dog.png'}",
        "data.prompt=a dog",
        f"data.mask={image_files / 'dog_mask.png'}",
        "data.resolution=32",
        "schedule.iterations=4",
        "schedule.timelapse_every=2",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


def test_single_run_writes_every_promised_file(image_files, tmp_path, peekaboo_cache):
    result = run_cli(tiny(image_files, f"hydra.run.dir={tmp_path}/run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    item = tmp_path / "run" / "items" / "dog"
    for name in ITEM_FILES:
        assert (item / name).is_file() and (item / name).stat().st_size > 0, name
    record = json.loads((item / "result.json").read_text())
    assert record["status"] == "complete" and record["prompts"] == ["a dog"] and record["seed"] == 0
    assert 0.0 <= record["iou"] <= 1.0 and record["timings"]["iterations"] == 4
    assert set(record["files"]) == set(ITEM_FILES) - {"result.json"}
    assert len(record["config_hash"]) == 12
    alpha = np.load(item / "alpha.npy")
    assert alpha.shape == (32, 32) and alpha.min() > 0 and alpha.max() < 1
    gif = Image.open(item / "timelapse.gif")
    assert gif.n_frames == 3  # iterations 0, 2 and the final mask
    history = list(csv.DictReader((item / "history.csv").open()))  # every iteration's terms; result.json the last
    assert [int(row["iteration"]) for row in history] == [0, 1, 2, 3]
    assert {k: float(v) for k, v in history[-1].items() if k != "iteration"} == pytest.approx(
        record["results"][0]["final"], rel=1e-6
    )
    overlay = Image.open(item / "overlay.png")
    assert overlay.size == (48, 48)  # the centre crop of the 64x48 original, at native resolution
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 1 and metrics["mIoU"] == pytest.approx(record["iou"])
    assert (tmp_path / "run" / "per_item.csv").is_file()
    assert not list((tmp_path / "run").rglob("*.tmp"))  # no half-written files left behind
    assert "mIoU" in result.stdout
    # outputs never go to the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# slow (three processes, 23 s): the fast suite keeps seeds in-process (test_parametrization) and the same outputs
# across processes (test_scale_out's killed-run resume compares with a separate reference run)
@pytest.mark.slow
def test_same_seed_same_alpha_different_seed_different_alpha(image_files, tmp_path, peekaboo_cache):
    alphas = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        result = run_cli(tiny(image_files, f"seed={seed}", f"hydra.run.dir={tmp_path}/{name}"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        alphas[name] = np.load(tmp_path / name / "items" / "dog" / "alpha.npy")
    assert np.array_equal(alphas["a"], alphas["b"])
    assert not np.allclose(alphas["a"], alphas["c"])


# slow (9 s): sweeps' job directories are in the fast suite through test_toy_quality and test_reliability_sweep,
# the variant record through test_variants_cli
@pytest.mark.slow
def test_two_job_sweep_writes_two_run_directories(image_files, tmp_path, peekaboo_cache):
    result = run_cli(
        tiny(
            image_files,
            "param=raster,fourier_bilateral",
            f"hydra.sweep.dir={tmp_path}/sweep",
            "-m",
        ),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    variants = [json.loads((job / "items" / "dog" / "result.json").read_text())["variant"]["param"] for job in jobs]
    assert variants == ["raster", "fourier_bilateral"]


# slow (three processes, 22 s): the fast suite keeps skipping complete items (test_console) and redoing partial
# or damaged ones (test_reliability_resume)
@pytest.mark.slow
def test_rerun_skips_complete_items_and_redoes_partial_ones(image_files, tmp_path, peekaboo_cache):
    args = tiny(image_files, f"hydra.run.dir={tmp_path}/run")
    assert run_cli(args, cwd=tmp_path).returncode == 0
    item = tmp_path / "run" / "items" / "dog"
    first = (item / "result.json").read_text()
    stamp = (item / "result.json").stat().st_mtime_ns
    assert run_cli(args, cwd=tmp_path).returncode == 0
    assert (item / "result.json").stat().st_mtime_ns == stamp  # skipped
    (item / "overlay.png").unlink()  # a partial item is redone
    assert run_cli(args, cwd=tmp_path).returncode == 0
    assert (item / "overlay.png").is_file()
    assert json.loads((item / "result.json").read_text())["iou"] == json.loads(first)["iou"]
