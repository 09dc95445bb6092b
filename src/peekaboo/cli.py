"""The command line: ``run.py``, the ``peekaboo`` console script and ``python -m peekaboo`` run the same job, and
our errors become one clear message and exit status 2.

The console script reads the presets shipped in the package (``peekaboo/conf``), so it works from any directory
once peekaboo is installed; outputs go under ``outputs/`` of the working directory, as with ``run.py``."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from peekaboo.errors import PeekabooError


def run_reporting_errors(cfg: DictConfig) -> float | None:
    """Run the job; a PeekabooError is printed without a traceback. Returns the score sweepers (e.g. Optuna)
    optimise: mIoU, or the Hungarian mIoU of unsupervised methods (method=diffseg); None without ground truth.
    The command line opts in to the CPU allocator tuning (large CPU tensors reuse freed memory instead of
    page-faulting anew, see ``peekaboo.cpu_memory``); importing peekaboo does not."""
    from peekaboo.cpu_memory import keep_freed_memory
    from peekaboo.pipeline import run

    keep_freed_memory()

    try:
        metrics = run(cfg)
    except PeekabooError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    return sweep_objective(metrics)


def main() -> None:
    """``peekaboo [group=option ...] [key=value ...] [-m]``: exactly ``python run.py ...``."""
    import hydra

    from peekaboo.config.compose import CONF
    from peekaboo.config.store import register_configs

    register_configs()
    hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")(run_reporting_errors)()


def sweep_objective(metrics: dict | None) -> float | None:
    if not metrics:
        return None
    return metrics.get("mIoU", metrics.get("hungarian_mIoU"))
