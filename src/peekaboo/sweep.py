"""Sweep-level results: ``summary.csv``/``summary.md`` over a multirun's jobs, and the ``render`` step.

``SweepSummary`` is a Hydra callback (``hydra.callbacks.summary`` in conf/config.yaml). After every job of a
multirun it rewrites the summary from what is on disk (each job's ``.hydra/overrides.yaml`` and
``metrics.json``), so the summary exists even when a later job crashes, a resumed sweep rewrites it whole, and a
job without metrics is listed with status ``missing``. When the sweep (or a single run) ends it runs the
config's ``render`` entries (``{name: {_target_: fn, ...}}``, each called as ``fn(directory, ...)``) and, with
``logger=wandb``, logs the summary as a W&B table. ``render_directory`` does the same by hand on an existing
directory (``python experiments/render.py <dir>``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import call
from omegaconf import DictConfig, OmegaConf

from peekaboo.config.resolvers import register_resolvers
from peekaboo.errors import DataError, PeekabooError
from peekaboo.evaluation.metrics import PRECISION_LEVELS, TUNED_NOTE
from peekaboo.evaluation.results import item_dir, read_result
from peekaboo.io.atomic import write_text
from peekaboo.io.tables import csv_text, markdown_table

log = logging.getLogger("peekaboo")

METRICS = ("n", "mIoU", "cIoU", *(f"Prec@{p}" for p in PRECISION_LEVELS))
SHOWN = ("job", "status", "overrides", *METRICS, "best_threshold", "best_mIoU")


@dataclass
class Job:
    """One run directory of a sweep (or a single run) as found on disk."""

    directory: Path
    overrides: list[str]
    choices: dict[str, Any]  # config group -> preset (hydra.runtime.choices)
    metrics: dict[str, Any] | None

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def status(self) -> str:
        if self.metrics is None:
            return "missing"
        done, expected = self.metrics.get("items", 0), self.metrics.get("expected_items", 0)
        return "complete" if done >= expected else f"partial ({done}/{expected} items)"

    def config(self) -> DictConfig:
        """The job's composed config (``.hydra/config.yaml``; our resolvers registered to resolve it)."""
        register_resolvers()
        return OmegaConf.load(self.directory / ".hydra" / "config.yaml")

    def result(self, item_id: str) -> dict[str, Any] | None:
        return read_result(item_dir(self.directory, item_id))


def read_job(directory: Path) -> Job:
    hydra_dir = directory / ".hydra"
    overrides = OmegaConf.load(hydra_dir / "overrides.yaml") if (hydra_dir / "overrides.yaml").is_file() else []
    choices = {}
    if (hydra_dir / "hydra.yaml").is_file():
        choices = OmegaConf.to_container(OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices)
    try:
        metrics = json.loads((directory / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        metrics = None
    return Job(directory, [str(o) for o in overrides], choices, metrics)


def find_jobs(directory: Path) -> list[Job]:
    """The run itself (a directory with ``.hydra/``) or a sweep's jobs (its subdirectories with ``.hydra/``)."""
    directory = Path(directory)
    if (directory / ".hydra").is_dir():
        return [read_job(directory)]
    if not directory.is_dir():
        raise DataError(f"{directory} does not exist (expected a run directory or a sweep directory)")
    found = [p for p in directory.iterdir() if (p / ".hydra").is_dir()]
    numbered = sorted((p for p in found if p.name.isdigit()), key=lambda p: int(p.name))
    return [read_job(p) for p in numbered + sorted(p for p in found if not p.name.isdigit())]


def summary_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """One row per job: its overrides, status, the fixed-threshold metrics and the best-threshold ones."""
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"job": job.name, "status": job.status, "overrides": " ".join(job.overrides)}
        metrics = job.metrics or {}
        row.update({k: metrics.get(k) for k in METRICS})
        row["threshold"] = metrics.get("threshold")
        best = metrics.get("best_threshold") or {}
        row["best_threshold"] = best.get("threshold")
        row.update({f"best_{k}": best.get(k) for k in METRICS if k != "n"})
        row["seconds_per_item"] = metrics.get("timings", {}).get("seconds_per_item")
        rows.append(row)
    return rows


def write_summary(sweep_dir: Path) -> list[dict[str, Any]]:
    """``summary.csv`` (every column) and ``summary.md`` (the main ones) in ``sweep_dir``; returns the rows."""
    rows = summary_rows(find_jobs(sweep_dir))
    write_text(sweep_dir / "summary.csv", csv_text(rows))
    header = (
        f"# Sweep summary: {sweep_dir}\n\nFixed threshold (task.threshold) metrics; best_*: {TUNED_NOTE}.\n"
        "Full columns in summary.csv.\n\n"
    )
    write_text(sweep_dir / "summary.md", header + markdown_table(rows, list(SHOWN)))
    return rows


def render(spec: Any, directory: Path) -> list[Path]:
    """Run every renderer of ``spec`` ({name: {_target_: fn, ...}}) on ``directory``; returns the files written."""
    written: list[Path] = []
    for name, entry in (spec or {}).items():
        if entry is None:
            continue
        try:
            out = call(entry, Path(directory))
        except PeekabooError as err:
            log.error("render.%s: %s", name, err)
            continue
        written += list(out or [])
    for path in written:
        log.info("rendered %s", path)
    return written


def saved_config(directory: Path) -> DictConfig:
    """The config a run or sweep directory was produced with (``multirun.yaml`` or ``.hydra/config.yaml``)."""
    for path in (directory / "multirun.yaml", directory / ".hydra" / "config.yaml"):
        if path.is_file():
            return OmegaConf.load(path)
    raise DataError(f"{directory}: neither multirun.yaml nor .hydra/config.yaml; not a run or sweep directory")


def render_directory(directory: Path, only: list[str] | None = None) -> list[Path]:
    """Rewrite a sweep's summary and run the saved ``render`` entries (or only the named ones) on ``directory``."""
    directory = Path(directory)
    cfg = saved_config(directory)
    if (directory / "multirun.yaml").is_file():
        write_summary(directory)
    spec = OmegaConf.to_container(cfg.get("render") or {}, resolve=False)
    if only:
        unknown = sorted(set(only) - set(spec))
        if unknown:
            raise DataError(f"{directory}: no renderer {unknown} in its config (it has: {sorted(spec) or 'none'})")
        spec = {k: v for k, v in spec.items() if k in only}
    return render(spec, directory)


class SweepSummary(Callback):
    """Hydra callback: summary after every multirun job, renderers and the W&B summary table at the end."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.hydra_cfg is not None and job_return.hydra_cfg.hydra.mode == RunMode.MULTIRUN:
            write_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_summary(sweep_dir)
        log.info("sweep summary in %s", sweep_dir / "summary.md")
        if OmegaConf.select(config, "logger.name") == "wandb":
            from peekaboo.loggers import log_sweep_summary

            log_sweep_summary(config.logger, sweep_dir, rows)
        render(config.get("render"), sweep_dir)

    def on_run_end(self, config: DictConfig, job_return: JobReturn | None = None, **kwargs: Any) -> None:
        if job_return is not None and job_return.status == JobStatus.COMPLETED and config.get("render"):
            render(config.render, Path(job_return.hydra_cfg.hydra.runtime.output_dir))
