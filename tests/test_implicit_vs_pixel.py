"""experiment=fig_implicit_vs_pixel: pixel variance recorded at every iteration, opaque RGB generation, the two-job
sweep on the toy world with its figure and settling summary, and the Stable Diffusion path (tiny_sd)."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from peekaboo.engine.optimize import optimize
from peekaboo.engine.random import UnitRandom
from peekaboo.evaluation.convergence import settling_iteration
from peekaboo.guidance.objective import ObjectiveOutput
from peekaboo.params.parametrization import Parametrization
from peekaboo.tasks.base import history_csv
from peekaboo.tasks.rgba import RGBAScene

BACKGROUNDS = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
ITERATIONS = 30


def darken(composites, *_):
    """A stand-in objective (the engine needs only ``total`` and ``per_unit``): pulls every pixel towards 0."""
    return ObjectiveOutput(composites.images.square().sum(), {})


def run_engine(seeds, channels, iterations=6):
    rng = UnitRandom(seeds, "cpu")
    scene = RGBAScene(Parametrization(rng.init, channels, 8, 8), BACKGROUNDS, 2)
    optimizer = lambda groups: torch.optim.SGD(groups, lr=0.5)  # noqa: E731
    return optimize(scene, darken, rng, optimizer, torch.zeros(len(seeds), 1), None, iterations, snapshot_every=1)


def test_pixel_variance_is_the_image_variance_at_every_iteration():
    result = run_engine([3, 4], channels=3)
    variance = result.history["pixel_variance"]
    frames = result.frames["rgba"]  # (7, 2, 4, 8, 8): the image before each of the 6 steps, then the final one
    assert variance.shape == (6, 2) and frames.shape == (7, 2, 4, 8, 8)
    assert torch.all(frames[:, :, 3] == 1)  # opaque: alpha 1, no background shows
    torch.testing.assert_close(variance, frames[:6, :, :3].flatten(2).var(2, correction=0))
    assert not torch.allclose(variance[0], variance[-1])  # it follows the optimisation
    alone = run_engine([4], channels=3)  # a unit's curve does not depend on its batch
    torch.testing.assert_close(alone.history["pixel_variance"][:, 0], variance[:, 1])
    transparent = run_engine([3, 4], channels=4)  # RGBA: the composites' variance, over random backgrounds
    assert transparent.history["pixel_variance"].shape == (6, 2)
    assert torch.isfinite(transparent.history["pixel_variance"]).all()


def test_history_csv_has_one_row_per_unit_and_iteration():
    history = {"sds": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "t": torch.tensor([[10.0, 20.0], [30.0, 40.0]])}
    rows = list(csv.DictReader(history_csv(history, [1]).decode().splitlines()))
    assert rows == [{"iteration": "0", "sds": "2", "t": "20"}, {"iteration": "1", "sds": "4", "t": "40"}]
    keyed = list(csv.DictReader(history_csv(history, [0, 1], [{"cell": 0}, {"cell": 1}]).decode().splitlines()))
    assert [(r["cell"], r["iteration"], r["sds"]) for r in keyed] == [("0", "0", "1"), ("0", "1", "3")] + [
        ("1", "0", "2"),
        ("1", "1", "4"),
    ]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The preset on the toy world: two prompts, both parametrizations, 30 iterations."""
    tmp = tmp_path_factory.mktemp("implicit_vs_pixel")
    args = [
        "experiment=fig_implicit_vs_pixel",
        "model=toy",
        "data=prompts_toy",
        "data.prompts=[red circle,blue square]",
    ]
    args += [f"schedule.iterations={ITERATIONS}", "schedule.timelapse_every=10", "trainer.enable_progress_bar=false"]
    result = run_cli([*args, f"hydra.sweep.dir={tmp / 'sweep'}"], cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "sweep"


def curve(job_dir, item_id):
    with (job_dir / "items" / item_id / "history.csv").open() as handle:
        return [float(row["pixel_variance"]) for row in csv.DictReader(handle)]


ITEMS = ("000_red_circle", "001_blue_square")


def test_both_parametrizations_record_the_variance_at_every_iteration(sweep):
    for job, param in (("0", "fourier_rgba"), ("1", "raster_rgba")):
        for seed, item_id in enumerate(ITEMS):
            item = sweep / job / "items" / item_id
            record = json.loads((item / "result.json").read_text())
            assert record["variant"]["param"] == param and record["seed"] == seed  # same prompts and seeds
            assert set(record["files"]) == {"image.png", "timelapse.gif", "history.csv"}  # opaque: no alpha files
            values = curve(sweep / job, item_id)
            assert len(values) == ITERATIONS and all(v > 0 for v in values)
            assert record["results"][0]["final"]["pixel_variance"] == pytest.approx(values[-1], rel=1e-6)
            assert record["timelapse_iterations"] == [0, 10, 20, 30]
            assert Image.open(item / "image.png").mode == "RGB" and Image.open(item / "image.png").size == (32, 32)
    # The pixel image starts as sigmoid(N(0, 1)) per pixel and channel, whose variance is 0.0433.
    expected = float(np.var(1 / (1 + np.exp(-np.random.default_rng(0).standard_normal(10**6)))))
    assert curve(sweep / "1", ITEMS[0])[0] == pytest.approx(expected, abs=0.004)


def test_summary_states_when_each_curve_settles(sweep):
    summary = json.loads((sweep / "fig_implicit_vs_pixel.json").read_text())
    assert summary["tolerance"] == 0.05 and summary["hold"] == 0.1
    rows = {(r["job"], r["curve"]): r for r in summary["curves"]}
    assert set(rows) == {(job, name) for job in "01" for name in ("red circle", "blue square", "mean of 2")}
    for job in "01":
        curves = [curve(sweep / job, item_id) for item_id in ITEMS]
        for name, values in (("red circle", curves[0]), ("blue square", curves[1]), ("mean of 2", np.mean(curves, 0))):
            row = rows[(job, name)]
            assert row["settles_at"] == settling_iteration(values, 0.05, 0.1)
            assert row["settling"] == ("never" if row["settles_at"] is None else f"iteration {row['settles_at']}")
            assert row["final_variance"] == pytest.approx(values[-1], rel=1e-6) and row["iterations"] == ITERATIONS
    assert rows[("0", "mean of 2")]["parametrization"] == "implicit (fourier_rgba)"
    assert rows[("1", "mean of 2")]["parametrization"] == "pixel (raster_rgba)"
    md = (sweep / "fig_implicit_vs_pixel.md").read_text()
    assert "within 5% of its final value" in md and "| pixel (raster_rgba) | mean of 2 |" in md
    width, height = Image.open(sweep / "fig_implicit_vs_pixel.png").size
    assert width >= 900 and height > width  # 4 rows (2 prompts x 2 jobs) of 4 frames, then the two plots


def test_tiny_sd_sweep(tmp_path, peekaboo_cache):
    """The SD path: both parametrizations through the VAE and UNet at 64 px, and the figure."""
    args = ["experiment=fig_implicit_vs_pixel", "model=tiny_sd", "data.prompts=[a cat]", "schedule.iterations=2"]
    args += ["schedule.timelapse_every=1", "trainer.enable_progress_bar=false", f"hydra.sweep.dir={tmp_path}/sweep"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        item = tmp_path / "sweep" / job / "items" / "000_a_cat"
        assert (
            Image.open(item / "image.png").size == (64, 64) and len(curve(tmp_path / "sweep" / job, "000_a_cat")) == 2
        )
    assert Image.open(tmp_path / "sweep" / "fig_implicit_vs_pixel.png").size[0] > 500
