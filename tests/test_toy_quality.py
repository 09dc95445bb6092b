"""The toy world's quality floors through the real CLI and presets; and the test that shows they can fail."""

import json

import pytest

from conftest import run_cli

FLOORS = {"raster": 0.70, "raster_bilateral": 0.85, "fourier_bilateral": 0.80}


def metrics_of(job):
    return json.loads((job / "metrics.json").read_text())


@pytest.fixture(scope="module")
def quality_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    args = [
        "experiment=toy",
        f"param={','.join(FLOORS)}",
        "trainer.enable_progress_bar=false",
        "contact_sheet=0",
        f"hydra.sweep.dir={root}/sweep",
        "-m",
    ]
    result = run_cli(args, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: metrics_of(root / "sweep" / str(i)) for i, name in enumerate(FLOORS)}


@pytest.mark.parametrize("param", list(FLOORS))
def test_toy_quality_floor(quality_sweep, param):
    metrics = quality_sweep[param]
    assert metrics["n"] == 16
    assert metrics["mIoU"] >= FLOORS[param], metrics


def test_bilateral_beats_raster(quality_sweep):
    assert quality_sweep["raster_bilateral"]["mIoU"] > quality_sweep["raster"]["mIoU"]


def test_without_guidance_the_mask_fails(tmp_path):
    """Guidance scale 1 (no CFG): the prompt has no pull and the same preset falls far below its floor."""
    result = run_cli(
        [
            "experiment=toy",
            "loss.sds.guidance_scale=1",
            "trainer.enable_progress_bar=false",
            "contact_sheet=0",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = metrics_of(tmp_path / "run")
    assert metrics["n"] == 16 and metrics["mIoU"] < 0.2, metrics
