"""Scale-out on the CPU: two gloo ranks, sweeps with ddp_spawn, kill-and-resume, launcher configs, W&B names."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, compose, run_cli
from peekaboo.loggers import run_names

TOY = [
    "data.num_scenes=5",
    "schedule.iterations=8",
    "trainer.batch_size=1",
    "trainer.enable_progress_bar=false",
    "contact_sheet=0",
]


def without_timings(value):
    """Outputs are identical between runs except wall-clock timings (and which rank wrote an item)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in ("timings", "rank")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def snapshot(run_dir: Path) -> dict[str, object]:
    """Every output file of a run (relative path -> content), JSON compared without timings."""
    files = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_dir() or ".hydra" in path.parts or path.suffix == ".log":
            continue
        rel = str(path.relative_to(run_dir))
        if path.suffix == ".json":
            files[rel] = without_timings(json.loads(path.read_text()))
        elif path.suffix == ".csv":
            files[rel] = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(path.open())]
        else:
            files[rel] = path.read_bytes()
    return files


# Bit-identical results need the same float reduction order: one intra-op thread in every process.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("single")
    result = run_cli([*TOY, f"hydra.run.dir={root}/run"], cwd=root, env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "run"


def test_two_ranks_process_an_odd_number_of_items_exactly_once(single_process_run, tmp_path):
    result = run_cli(
        [*TOY, "trainer=ddp_spawn", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={tmp_path}/run"],
        cwd=tmp_path,
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    records = [json.loads(p.read_text()) for p in sorted(run.glob("items/*/result.json"))]
    assert sorted(r["item_id"] for r in records) == [f"scene_{i:04d}" for i in range(5)]
    ranks = [r["rank"] for r in records]
    assert sorted(ranks) == [0, 0, 0, 1, 1]  # no duplicates, no padding: 3 + 2
    # merged by rank 0 into one metrics file equal to the single-process result, item by item too
    assert snapshot(run) == snapshot(single_process_run)


MULTIRUN_ON_TWO_RANKS = [
    *TOY, "data.num_scenes=3", "trainer.accelerator=cpu", "trainer.devices=2", "param=raster,raster_bilateral"
]


@pytest.mark.slow  # two 2-rank jobs (20 s); test_two_ranks_process_an_odd_number_of_items_exactly_once is fast
def test_multirun_with_ddp_spawn(tmp_path):
    sweep = MULTIRUN_ON_TWO_RANKS
    result = run_cli([*sweep, "trainer=ddp_spawn", f"hydra.sweep.dir={tmp_path}/sweep", "-m"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert json.loads((tmp_path / "sweep" / job / "metrics.json").read_text())["n"] == 3


def test_multirun_with_plain_ddp_is_refused(tmp_path):
    sweep = MULTIRUN_ON_TWO_RANKS
    refused = run_cli([*sweep, "trainer=ddp", f"hydra.sweep.dir={tmp_path}/refused", "-m"], cwd=tmp_path)
    assert refused.returncode == 2
    assert "trainer.strategy" in refused.stderr and "ddp_spawn" in refused.stderr
    assert not list((tmp_path / "refused").rglob("result.json"))


def test_killed_run_resumes_to_identical_outputs(single_process_run, tmp_path):
    args = [*TOY, "schedule.iterations=40", f"hydra.run.dir={tmp_path}/run"]
    reference = run_cli([*TOY, "schedule.iterations=40", f"hydra.run.dir={tmp_path}/reference"], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while len(list((tmp_path / "run").glob("items/*/result.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # no clean-up of any kind: as a crash or a pre-empted job
    process.wait()
    done = len(list((tmp_path / "run").glob("items/*/result.json")))
    assert 2 <= done < 5, f"the kill should land mid-run, {done} items were complete"
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = run_cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert snapshot(tmp_path / "run") == snapshot(tmp_path / "reference")


def test_a_failing_item_stops_the_run_and_a_rerun_completes_it(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / f"{name}.png")
    (root / "index.csv").write_text("image,prompt\na.png,a cat\nb.png,a dog\nc.png,a cow\n")
    good = (root / "b.png").read_bytes()
    (root / "b.png").write_bytes(b"not an image")
    args = [
        "model=tiny_sd",
        "data=folder",
        f"data.root={root}",
        "data.resolution=32",
        "schedule.iterations=3",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path}/run",
    ]
    failed = run_cli(args, cwd=tmp_path)
    assert failed.returncode == 2
    assert "00001_b" in failed.stderr and "b.png" in failed.stderr
    assert sorted(p.parent.name for p in (tmp_path / "run").glob("items/*/result.json")) == ["00000_a"]
    (root / "b.png").write_bytes(good)
    assert run_cli(args, cwd=tmp_path).returncode == 0
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "run").glob("items/*/result.json"))]
    assert [r["item_id"] for r in records] == ["00000_a", "00001_b", "00002_c"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["items"] == 3


def test_slurm_and_joblib_launchers_compose():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from peekaboo.config.store import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        slurm = hydra_compose(
            "config", overrides=["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"], return_hydra_config=True
        )
        joblib = hydra_compose("config", overrides=["hydra/launcher=joblib"], return_hydra_config=True)
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.launcher.gpus_per_node == 4 and slurm.hydra.launcher.tasks_per_node == 1
    assert joblib.hydra.launcher._target_.endswith("JoblibLauncher")
    assert compose(["trainer=ddp"]).trainer.strategy == "ddp"


def test_wandb_runs_are_grouped_by_sweep_and_named_by_overrides(tmp_path):
    assert run_names(Path("/x/multirun_2026/3"), "param=raster", multirun=True) == ("multirun_2026", "param=raster")
    assert run_names(Path("/x/2026-11-22_10-00-00"), "", multirun=False) == (None, "2026-11-22_10-00-00")
    env_args = [
        *TOY,
        "data.num_scenes=1",
        "schedule.iterations=2",
        "logger=wandb",
        "logger.mode=offline",
        "param=raster,raster_bilateral",
        f"hydra.sweep.dir={tmp_path}/sweep",
        "-m",
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *env_args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_MODE": "offline"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):  # one offline run per job, its results table holding the item (see test_wandb.py)
        runs = list((tmp_path / "sweep" / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1
        (table,) = (runs[0] / "files" / "media").glob("table/results_*.table.json")
        assert [row[0] for row in json.loads(table.read_text())["data"]] == ["scene_0000"]
