"""A sweep survives a job's clean error: the job is listed as failed, later jobs run, renderers run at the end."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

QUICK = [
    "data.num_scenes=1",
    "schedule.iterations=2",
    "schedule.timelapse_every=0",
    "trainer.enable_progress_bar=false",
]


def mark_rendered(directory: Path) -> list[Path]:
    """A renderer for the test: writes the statuses it sees in the summary."""
    with (directory / "summary.csv").open() as handle:
        statuses = [row["status"] for row in csv.DictReader(handle)]
    path = directory / "rendered.json"
    path.write_text(json.dumps(statuses))
    return [path]


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "data.background=bogus,blobs",
            *QUICK,
            f"hydra.sweep.dir={sweep}",
            "render={mark: {_target_: test_reliability_sweep.mark_rendered}}",
        ],
        tmp_path,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT / "tests")]))},
    )
    assert result.returncode == 2, result.stderr  # the sweep finished, and says a job failed
    assert "error: unknown toy background 'bogus'" in result.stderr
    assert "Traceback" not in result.stderr
    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["job"], r["status"]) for r in rows] == [("0", "failed"), ("1", "complete")]
    assert rows[0]["error"] == "DataError: unknown toy background 'bogus'; expected one of blobs, stripes, plain, noise"
    assert float(rows[1]["mIoU"]) > 0
    summary_md = (sweep / "summary.md").read_text()
    assert "| 0 | failed |" in summary_md and "unknown toy background 'bogus'" in summary_md
    assert json.loads((sweep / "0" / "failed.json").read_text())["error"] == "DataError"
    assert json.loads((sweep / "rendered.json").read_text()) == ["failed", "complete"]  # renderers ran at the end


def test_a_single_run_still_exits_with_the_message(tmp_path):
    result = run_cli(["data.background=bogus", *QUICK, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: unknown toy background 'bogus'; expected one of blobs, stripes, plain, noise"
    )
    assert not (tmp_path / "run" / "failed.json").exists()


@pytest.mark.parametrize(
    ("entry", "refused"),
    [
        (
            {"_target_": "experiments.paper.table", "name": {"_target_": "os.system", "command": "touch {evil}"}},
            "os.system",
        ),
        # a helper experiments.paper imports is not one of its renderers
        ({"_target_": "experiments.paper.write_text", "path": "{evil}", "text": "x"}, "experiments.paper.write_text"),
    ],
)
def test_render_runs_only_allow_listed_renderers_from_a_saved_config(tmp_path, entry, refused):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    evil = tmp_path / "pwned"
    config = {"render": {"x": json.loads(json.dumps(entry).replace("{evil}", str(evil)))}}
    (run / ".hydra" / "config.yaml").write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "render.py"), str(run)], capture_output=True, text=True
    )
    assert result.returncode == 2 and not evil.exists()
    assert f"render.x names '{refused}', which is not a renderer of experiments.paper" in result.stderr
    assert "Traceback" not in result.stderr
