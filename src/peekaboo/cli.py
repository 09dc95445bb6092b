"""The command line: ``run.py``, the ``peekaboo`` console script and ``python -m peekaboo`` run the same job, and
our errors become one clear message.

The console script reads the presets shipped in the package (``peekaboo/conf``), so it works from any directory
once peekaboo is installed; outputs go under ``outputs/`` of the working directory, as with ``run.py``.

A single run exits with status 2. Under ``-m`` a job's clean error (a ``PeekabooError``) is recorded in its
directory (``failed.json``, listed as ``failed`` in the sweep summary) and the sweep goes on with its next job;
any other exception is recorded the same way and then propagates (a bug: Hydra reports it when the sweep ends).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from omegaconf import DictConfig

from peekaboo.errors import PeekabooError


def run_reporting_errors(cfg: DictConfig) -> float | None:
    """Run the job; a PeekabooError is printed without a traceback. Returns the score sweepers (e.g. Optuna)
    optimise: mIoU, or the Hungarian mIoU of unsupervised methods (method=diffseg); None without ground truth,
    NaN for a failed job of a sweep (Optuna records such a trial as failed and goes on).
    The command line opts in to the CPU allocator tuning (large CPU tensors reuse freed memory instead of
    page-faulting anew, see ``peekaboo.cpu_memory``); importing peekaboo does not."""
    from peekaboo.cpu_memory import keep_freed_memory
    from peekaboo.pipeline import run
    from peekaboo.sweep import clear_failure, record_failure

    keep_freed_memory()
    directory, multirun = job_directory()
    if directory is not None:
        clear_failure(directory)
    try:
        metrics = run(cfg)
    except Exception as err:
        clean = peekaboo_error_in(err)
        if clean is None:  # a bug: recorded for the summary, then Hydra reports it
            if multirun:
                record_failure(directory, err)
            raise
        print(f"error: {clean}", file=sys.stderr, flush=True)
        if not multirun:
            sys.exit(2)
        record_failure(directory, clean)
        return math.nan
    return sweep_objective(metrics)


def main() -> None:
    """``peekaboo [group=option ...] [key=value ...] [-m]``: exactly ``python run.py ...``."""
    import hydra

    from peekaboo.config.compose import CONF
    from peekaboo.config.store import register_configs

    register_configs()
    hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")(run_reporting_errors)()


def peekaboo_error_in(err: BaseException) -> PeekabooError | None:
    """The ``PeekabooError`` behind ``err``: itself, or one raised in a rank that ``ddp_spawn`` started (torch
    re-raises only the text of that rank's traceback, whose last ``peekaboo.errors`` line is our message)."""
    if isinstance(err, PeekabooError):
        return err
    from torch.multiprocessing import ProcessRaisedException

    if isinstance(err, ProcessRaisedException):
        for line in reversed(str(err).splitlines()):
            match = re.match(r"peekaboo\.errors\.\w+: (.+)$", line)
            if match:
                return PeekabooError(match.group(1))
    return None


def job_directory() -> tuple[Path | None, bool]:
    """(this Hydra job's output directory, whether it is a job of a multirun); (None, False) outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, False
    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN


def sweep_objective(metrics: dict | None) -> float | None:
    if not metrics:
        return None
    return metrics.get("mIoU", metrics.get("hungarian_mIoU"))
