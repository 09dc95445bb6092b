"""What a run says: the model in use, one progress bar (plain lines when redirected), the resume note, run names
that follow the loss, and run.log holding the results."""

import io
import sys

import lightning
import pytest
from torch.utils.data import DataLoader

from conftest import compose, run_cli
from peekaboo.config.build import build
from peekaboo.config.describe import describe_model, describe_schedule
from peekaboo.data.base import collate_items
from peekaboo.lightning.module import PeekabooModule
from peekaboo.lightning.progress import ItemProgress


def test_run_names_follow_the_loss_and_the_method():
    assert compose([]).run_name == "toy_raster_bilateral"
    assert compose(["loss=clip"]).run_name == "clip_raster_bilateral"  # no diffusion prior: not toy_*
    assert compose(["row=clip", "param=fourier"]).run_name == "clip_fourier"
    assert compose(["loss=sds_clip", "model=tiny_sd"]).run_name == "tiny_sd_sds_clip_raster_bilateral"
    assert compose(["method=daam", "model=tiny_sd", "loss=clip"]).run_name == "tiny_sd_daam"


def test_the_start_of_a_run_names_the_model_and_the_schedule():
    toy = describe_model(compose([]))
    assert "toy world" in toy and "32x32" in toy and "model=sd15" in toy
    assert "no diffusion prior" in describe_model(compose(["loss=clip"]))
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in describe_model(compose(["model=sd15"]))
    assert "random" in describe_model(compose(["model=tiny_sd"]))
    # the toy tuning's recipe gives the paper schedule its length and the trainer its batch; what is typed wins
    assert describe_schedule(compose([])) == "schedule: 200 iterations per item, 16 items per batch"
    assert describe_schedule(compose(["schedule=quick"])) == "schedule: 20 iterations per item, 16 items per batch"
    typed = describe_schedule(compose(["trainer.batch_size=4", "schedule.iterations=7"]))
    assert typed == "schedule: 7 iterations per item, 4 items per batch"
    assert describe_schedule(compose(["trainer=gpu"])).endswith("16 items per batch")
    assert describe_schedule(compose(["model=tiny_sd"])) == "schedule: 300 iterations per item, 1 items per batch"


def test_one_bar_counts_items_with_the_iteration_inside(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    cfg = compose(["data.num_scenes=3", "schedule.iterations=3", "schedule.timelapse_every=0"])
    dataset = build(cfg.data)
    progress = ItemProgress(interactive=True)
    trainer = lightning.Trainer(
        accelerator="cpu", logger=False, callbacks=[progress], inference_mode=False, enable_model_summary=False
    )
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate_items)
    trainer.predict(PeekabooModule(cfg), dataloaders=loader, return_predictions=False)
    text = stream.getvalue()
    assert "iteration 3/3" in text and "3/3 [" in text
    assert {line.split(":")[0].strip() for line in text.replace("\r", "\n").splitlines() if line.strip()} == {
        "items"
    }  # a single bar: every redraw is of the items bar


@pytest.fixture(scope="module")
def redirected_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("console")
    args = ["data.num_scenes=3", "schedule.iterations=4", "trainer.batch_size=2", f"hydra.run.dir={tmp_path}/run"]
    return tmp_path, args, run_cli(args, cwd=tmp_path)


def test_a_redirected_run_prints_plain_lines_and_run_log_keeps_the_results(redirected_run):
    tmp_path, _, result = redirected_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\r" not in result.stdout and "\r" not in result.stderr  # no bar redraws in a log file
    assert "model: the toy world" in result.stdout and "schedule: 4 iterations per item" in result.stdout
    assert "items 2/3 done" in result.stdout and "items 3/3 done" in result.stdout
    log = (tmp_path / "run" / "run.log").read_text()
    assert "model: the toy world" in log and "items 3/3 done" in log
    assert "scene_0002" in log and "mIoU=" in log and "best threshold" in log  # the table and the metrics


def test_a_resumed_run_says_how_many_items_it_skipped(redirected_run):
    tmp_path, args, _ = redirected_run
    (tmp_path / "run" / "items" / "scene_0001" / "result.json").unlink()
    resumed = run_cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "2 items complete, skipped" in resumed.stdout and "items 1/1 done" in resumed.stdout
