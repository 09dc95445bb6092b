"""What a run logs to W&B: one results table with images (not keys per item), metrics as summary values, optional
live curves. The run is a stand-in that records every call (no network, no W&B process)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import wandb

from conftest import compose, run_cli
from peekaboo.config.build import build
from peekaboo.engine.optimize import Step
from peekaboo.loggers import WandbLiveCurves, log_run_results


class RecordingRun:
    """The parts of a ``wandb.Run`` the pipeline uses, recording what it is given."""

    def __init__(self):
        self.logged: list[dict] = []
        self.summary: dict = {}
        self.metrics: list[tuple] = []

    def log(self, data: dict) -> None:
        self.logged.append(data)

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.metrics.append((name, step_metric))


TOY = ["data.num_scenes=3", "schedule.iterations=3", "schedule.timelapse_every=0", "contact_sheet=0"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("wandb")
    result = run_cli([*TOY, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "run"


def test_a_run_logs_one_table_with_images_and_its_metrics_as_summary_values(toy_run):
    dataset = build(compose(TOY).data)
    metrics = json.loads((toy_run / "metrics.json").read_text())
    run = RecordingRun()
    log_run_results(SimpleNamespace(experiment=run), metrics, dataset, toy_run, dataset.item_ids, rows=2)
    assert run.summary["mIoU"] == metrics["mIoU"]
    assert run.summary["best_threshold/mIoU"] == metrics["best_threshold"]["mIoU"]
    assert run.summary["timings/seconds_per_item"] == metrics["timings"]["seconds_per_item"]
    ((key, table),) = [item for logged in run.logged for item in logged.items()]  # one call, one key: no history
    assert key == "results" and isinstance(table, wandb.Table)
    assert table.columns[:4] == ["item", "prompt", "overlay", "IoU"] and {"sds", "alpha_mean", "seconds"} <= set(
        table.columns
    )
    assert [row[0] for row in table.data] == ["scene_0000", "scene_0001"]  # table_rows caps the rows
    record = json.loads((toy_run / "items" / "scene_0001" / "result.json").read_text())
    row = dict(zip(table.columns, table.data[1], strict=True))
    assert row["prompt"] == record["prompts"][0] and row["IoU"] == record["iou"]
    assert row["sds"] == record["results"][0]["final"]["sds"]
    image = row["overlay"]
    assert isinstance(image, wandb.Image) and set(image._masks) == {"prediction", "ground truth"}
    predicted = image._masks["prediction"]._val["mask_data"]
    assert predicted.shape == (32, 32) and predicted.dtype == np.uint8 and predicted.max() <= 1


def test_live_curves_log_batch_means_every_few_iterations():
    run = RecordingRun()
    trainer = SimpleNamespace(logger=SimpleNamespace(experiment=run))
    live = WandbLiveCurves(every=2)
    live.on_predict_start(trainer, None)
    assert ("live/*", "live/iteration") in run.metrics
    for _ in range(2):  # two batches of 3 iterations: the x axis keeps counting
        for iteration in range(3):
            terms = {"sds": torch.tensor([1.0, 3.0]) * (iteration + 1), "alpha_mean": torch.tensor([0.5, 0.5])}
            live.on_optimization_step(trainer, None, Step(iteration, terms, None))
    assert [point["live/iteration"] for point in run.logged] == [1, 3, 4, 6]
    assert [point["live/sds"] for point in run.logged] == [2.0, 6.0, 2.0, 6.0]
    assert all(point["live/alpha_mean"] == 0.5 for point in run.logged)


def test_an_offline_run_with_live_curves_writes_the_table_and_no_per_item_keys(tmp_path):
    args = [*TOY, "logger=wandb", "logger.mode=offline", "logger.live_curves=true", "logger.live_every=1"]
    result = run_cli([*args, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, env={"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (table,) = (offline / "files" / "media" / "table").glob("results_*.table.json")
    content = json.loads(table.read_text())
    assert len(content["data"]) == 3 and content["columns"][:4] == ["item", "prompt", "overlay", "IoU"]
    assert not list((offline / "files" / "media").glob("images/items/**/*"))  # no images keyed per item
