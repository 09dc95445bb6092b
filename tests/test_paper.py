"""The paper's table and figures regenerated end to end on the toy world, the sweep summary and W&B offline files."""

import csv
import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import ROOT, compose, run_cli
from experiments.paper import fig_timelapse, fig_variants
from experiments.tables import TABLES, short

QUICK = [
    "model=toy",
    "data=toy",
    "schedule.iterations=4",
    "schedule.timelapse_every=2",
    "trainer.enable_progress_bar=false",
]


def rows(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def table_sweep(tmp_path_factory):
    """experiment=table2_voc_c on two toy scenes, two variants, logged to W&B offline."""
    tmp = tmp_path_factory.mktemp("table2")
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp / "wandb_dir")}
    args = ["experiment=table2_voc_c", *QUICK, "data.num_scenes=2", "row=raster,raster_bilateral"]
    args += ["logger=wandb", "logger.mode=offline", f"hydra.sweep.dir={tmp / 'sweep'}"]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        result = run_cli(args, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "sweep"


def test_table_has_our_numbers_beside_the_papers(table_sweep):
    metrics = [json.loads((table_sweep / job / "metrics.json").read_text()) for job in ("0", "1")]
    summary = rows(table_sweep / "summary.csv")
    assert [(r["job"], r["status"]) for r in summary] == [("0", "complete"), ("1", "complete")]
    assert "row=raster " in summary[0]["overrides"] and "row=raster_bilateral " in summary[1]["overrides"]
    assert [float(r["mIoU"]) for r in summary] == [m["mIoU"] for m in metrics]
    assert [float(r["best_mIoU"]) for r in summary] == [m["best_threshold"]["mIoU"] for m in metrics]
    table = {r["row"]: r for r in rows(table_sweep / "table.csv")}
    assert list(table) == [row.row for row in TABLES["voc_c"].rows]  # every paper row, in the paper's order
    assert float(table["raster_bilateral"]["ours mIoU"]) == metrics[1]["mIoU"]
    assert float(table["raster_bilateral"]["paper mIoU"]) == 0.520 and table["raster"]["job"] == "0"
    assert table["clip"]["status"] == "not run" and table["clip"]["ours mIoU"] == ""
    md = (table_sweep / "table.md").read_text()
    assert "# Table 2: VOC-C Semantic Segmentation Evaluation" in md and "not comparable" in md
    assert f"| Peekaboo Variants (ours) | RGB Bilateral | {short(metrics[1]['Prec@0.2'])} (.892) |" in md
    best = f"| {short(metrics[1]['best_threshold']['mIoU'])} (.520) | 2 |"
    assert best in md.split("tuned on the test set")[1] and "| - (.430) | - |" in md


def test_wandb_offline_runs_hold_the_tables(table_sweep):
    for job in ("0", "1"):
        (run,) = (table_sweep / job / "wandb").glob("offline-run-*")
        assert list(run.glob("*.wandb")) and list(run.glob("files/media/table/results_*.table.json"))
        table = json.loads(next(run.glob("files/media/table/results_*.table.json")).read_text())
        assert table["columns"][:4] == ["item", "prompt", "overlay", "IoU"] and table["columns"][-1] == "seconds"
        assert len(table["data"]) == 2
    (summary_run,) = (table_sweep / "wandb").glob("offline-run-*")
    (table_file,) = summary_run.glob("files/media/table/sweep_summary_*.table.json")
    assert [row[0] for row in json.loads(table_file.read_text())["data"]] == ["0", "1"]


def test_figures_render_from_the_sweep_and_a_job(table_sweep):
    (variants,) = fig_variants(table_sweep, max_items=2)
    (timelapse,) = fig_timelapse(table_sweep / "1", max_items=1)
    for path in (variants, timelapse):
        assert Image.open(path).size[0] > 300


def test_summary_marks_a_missing_job_when_rendered_again(table_sweep, tmp_path):
    copy = tmp_path / "sweep"
    subprocess.run(["cp", "-r", str(table_sweep), str(copy)], check=True)
    (copy / "0" / "metrics.json").unlink()  # as if job 0 had crashed
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "render.py"), str(copy)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["status"] for r in rows(copy / "summary.csv")] == ["missing", "complete"]
    assert "| Peekaboo Variants (ours) | Raster | - (.756) |" in (copy / "table.md").read_text()


def test_lambda_figure_sweeps_multiples_of_the_recipe_lambda(tmp_path):
    args = ["experiment=fig_lambda_alpha", *QUICK, "subset=1", "figure.lambda_scale=0,2"]
    result = run_cli([*args, f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lambdas = [OmegaConf.load(tmp_path / "sweep" / job / ".hydra" / "config.yaml") for job in ("0", "1")]
    recipe = compose(["model=toy", "data=toy"]).param.recipe.lambda_alpha  # the toy tuning's 0.2
    assert [cfg.figure.lambda_scale for cfg in lambdas] == [0, 2]
    assert [json.loads((tmp_path / "sweep" / j / "metrics.json").read_text())["items"] for j in ("0", "1")] == [1, 1]
    resolved = [compose(["experiment=fig_lambda_alpha", "model=toy", f"figure.lambda_scale={s}"]) for s in (0, 2)]
    assert [cfg.loss.lambda_alpha for cfg in resolved] == [0.0, 2 * recipe]
    figure = Image.open(tmp_path / "sweep" / "fig_lambda_alpha.png")
    assert figure.size[0] > 2 * figure.size[1]  # one item: image, ground truth and two masks in a row
