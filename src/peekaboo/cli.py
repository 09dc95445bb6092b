"""Command-line behaviour shared by ``run.py``: our errors become one clear message and exit status 2."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from peekaboo.errors import PeekabooError


def run_reporting_errors(cfg: DictConfig) -> float | None:
    """Run the job; a PeekabooError is printed without a traceback. Returns the score sweepers (e.g. Optuna)
    optimise: mIoU, or the Hungarian mIoU of unsupervised methods (method=diffseg); None without ground truth."""
    from peekaboo.pipeline import run

    try:
        metrics = run(cfg)
    except PeekabooError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    return sweep_objective(metrics)


def sweep_objective(metrics: dict | None) -> float | None:
    if not metrics:
        return None
    return metrics.get("mIoU", metrics.get("hungarian_mIoU"))
