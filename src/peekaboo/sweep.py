"""Sweep-level results: ``summary.csv``/``summary.md`` over a multirun's jobs, and the ``render`` step.

``SweepSummary`` is a Hydra callback (``hydra.callbacks.summary`` in conf/config.yaml). After every job of a
multirun it rewrites the summary from what is on disk (each job's ``.hydra/overrides.yaml`` and
``metrics.json``), so the summary exists even when a later job crashes, a resumed sweep rewrites it whole, and a
job without metrics is listed with status ``missing``. A job that stopped on an error left ``failed.json`` (see
``peekaboo.cli``): it is listed as ``failed`` with the error in the ``error`` column, and the sweep exits with
status 2 once everything else is done. When the sweep (or a single run) ends it runs the config's ``render``
entries (``{name: {_target_: fn, ...}}``, each called as ``fn(directory, ...)``) and, with ``logger=wandb``, logs
the summary as a W&B table. ``render_directory`` does the same by hand on an existing directory
(``python experiments/render.py <dir>``), running only the renderers of ``RENDERER_MODULES``: a directory's
saved config is data, and ``_target_`` would otherwise call anything it names.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import call
from omegaconf import DictConfig, ListConfig, OmegaConf

from peekaboo.config.resolvers import register_resolvers
from peekaboo.errors import DataError, PeekabooError
from peekaboo.evaluation.metrics import PRECISION_LEVELS, TUNED_NOTE
from peekaboo.evaluation.results import item_dir, read_result
from peekaboo.io.atomic import check_writable, write_json, write_text
from peekaboo.io.tables import csv_text, markdown_table

log = logging.getLogger("peekaboo")

METRICS = ("n", "mIoU", "cIoU", *(f"Prec@{p}" for p in PRECISION_LEVELS))
SHOWN = ("job", "status", "overrides", *METRICS, "best_threshold", "best_mIoU")
FAILED = "failed.json"


def record_failure(directory: Path, error: BaseException) -> None:
    """Mark a job as failed (its summary row says so): the error's type and its message's first line."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    try:
        write_json(Path(directory) / FAILED, {"status": "failed", "error": type(error).__name__, "message": message})
    except PeekabooError as err:  # e.g. the disk that failed the job is full: the summary lists it as missing
        log.error("cannot record the failure of %s: %s", directory, err)


def clear_failure(directory: Path) -> None:
    """A job run again in the same directory starts without its earlier failure."""
    (Path(directory) / FAILED).unlink(missing_ok=True)


@dataclass
class Job:
    """One run directory of a sweep (or a single run) as found on disk."""

    directory: Path
    overrides: list[str]
    choices: dict[str, Any]  # config group -> preset (hydra.runtime.choices)
    metrics: dict[str, Any] | None
    failure: dict[str, Any] | None = None  # failed.json: the error that stopped the job

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def error(self) -> str | None:
        if self.failure is None:
            return None
        return f"{self.failure.get('error', 'error')}: {self.failure.get('message', '')}"

    @property
    def status(self) -> str:
        if self.failure is not None:
            return "failed"
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
    """What a job directory holds; unreadable or corrupt files count as absent (the job is then listed so)."""
    hydra_dir = directory / ".hydra"
    overrides = _load_yaml(hydra_dir / "overrides.yaml")
    hydra = _load_yaml(hydra_dir / "hydra.yaml")
    choices = OmegaConf.select(hydra, "hydra.runtime.choices") if isinstance(hydra, DictConfig) else None
    choices = OmegaConf.to_container(choices) if isinstance(choices, DictConfig) else {}
    overrides = [str(o) for o in overrides] if isinstance(overrides, ListConfig) else []
    return Job(directory, overrides, choices, _load_json(directory / "metrics.json"), _load_json(directory / FAILED))


def _load_yaml(path: Path) -> DictConfig | ListConfig | None:
    try:
        return OmegaConf.load(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - any parse error: the file is treated as missing
        log.warning("%s cannot be parsed; ignored", path)
        return None


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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
        if job.error is not None:
            row["error"] = job.error
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
    write_text(sweep_dir / "summary.csv", csv_text(rows))  # an "error" column only when a job failed
    header = (
        f"# Sweep summary: {sweep_dir}\n\nFixed threshold (task.threshold) metrics; best_*: {TUNED_NOTE}.\n"
        "Full columns in summary.csv.\n\n"
    )
    shown = [*SHOWN, "error"] if any("error" in row for row in rows) else list(SHOWN)
    write_text(sweep_dir / "summary.md", header + markdown_table(rows, shown))
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


# Modules whose public functions (defined there, not imported) ``render_directory`` may call from a saved config.
RENDERER_MODULES = ("experiments.paper",)


def targets(node: Any) -> list[str]:
    """Every ``_target_`` in a (nested) config container: ``call`` instantiates the nested ones too."""
    if isinstance(node, dict):
        found = [str(node["_target_"])] if "_target_" in node else []
        return found + [t for key, value in node.items() if key != "_target_" for t in targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in targets(value)]
    return []


def is_renderer(target: str) -> bool:
    """A public function defined in one of ``RENDERER_MODULES`` (not a helper it imports, e.g. ``write_text``)."""
    module, _, function = target.rpartition(".")
    if module not in RENDERER_MODULES or function.startswith("_"):
        return False
    return getattr(getattr(importlib.import_module(module), function, None), "__module__", None) == module


def check_renderers(spec: dict[str, Any], directory: Path) -> None:
    """Refuse a saved ``render`` entry that names anything but a renderer of ``RENDERER_MODULES``."""
    for name, entry in spec.items():
        for target in targets(entry):
            if not is_renderer(target):
                raise DataError(
                    f"{directory}: render.{name} names {target!r}, which is not a renderer of "
                    f"{', '.join(RENDERER_MODULES)}; only those are run from a directory's saved config "
                    "(pass --trust to run it if you wrote that config yourself)"
                )


def render_directory(directory: Path, only: list[str] | None = None, trust: bool = False) -> list[Path]:
    """Rewrite a sweep's summary and run the saved ``render`` entries (or only the named ones) on ``directory``.

    Only renderers of ``RENDERER_MODULES`` are run unless ``trust``."""
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
    if not trust:
        check_renderers(spec, directory)
    return render(spec, directory)


def check_or_exit(config: DictConfig, key: str) -> None:
    """``run_name`` stays under ``outputs/`` and the output directory ``key`` can be written, or the command stops
    here with one line, before Hydra creates the directory."""
    from peekaboo.config.validate import validate_run_name

    try:
        validate_run_name(config)
        check_writable(OmegaConf.select(config, key), key)
    except PeekabooError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)


class SweepSummary(Callback):
    """Hydra callback: the output directory checked first; summary after every multirun job, renderers and the W&B
    summary table at the end."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_or_exit(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_or_exit(config, "hydra.sweep.dir")

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
        failed = [row for row in rows if row["status"] == "failed"]
        if failed:  # after the renderers: a script running the sweep still learns that jobs failed
            log.error(
                "%d of %d jobs failed (see %s): %s",
                len(failed),
                len(rows),
                sweep_dir / "summary.md",
                "; ".join(f"job {row['job']}: {row['error']}" for row in failed),
            )
            sys.exit(2)

    def on_run_end(self, config: DictConfig, job_return: JobReturn | None = None, **kwargs: Any) -> None:
        if job_return is not None and job_return.status == JobStatus.COMPLETED and config.get("render"):
            render(config.render, Path(job_return.hydra_cfg.hydra.runtime.output_dir))
