"""Weights & Biases: the Lightning logger, the run's results table, its summary metrics and optional live curves.

What a run logs does not grow with the dataset in keys: one ``wandb.Table`` per run (a row per (item, prompt),
its overlay with prediction and ground-truth mask layers, IoU, final loss values), the metrics as summary values
and, with ``logger.live_curves``, a handful of ``live/*`` scalars every ``logger.live_every`` iterations. Per-item
loss curves stay in each item's ``history.csv``. See docs/wandb.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback
from PIL import Image

from peekaboo.config.schema import WandbMode
from peekaboo.engine.optimize import Step
from peekaboo.evaluation.results import item_dir, read_result
from peekaboo.io.images import overlay, to_uint8_image
from peekaboo.io.tables import columns_of


def wandb_logger(
    project: str,
    entity: str | None,
    mode: WandbMode | str,
    group: str | None,
    run_name: str | None,
    tags: list[str],
    save_dir: str,
):
    from lightning.pytorch.loggers import WandbLogger

    mode = getattr(mode, "value", mode)
    return WandbLogger(
        project=project,
        entity=entity,
        group=group,
        name=run_name,
        tags=list(tags),
        save_dir=save_dir,
        mode=mode,
        reinit="finish_previous" if mode != "disabled" else None,
    )


class WandbLiveCurves(Callback):
    """``logger.live_curves``: every ``every`` optimisation steps, the mean over the batch's units of each loss term
    and statistic as ``live/<name>``, against ``live/iteration`` (steps since the run started, over all batches).
    The values are read to the host only at those steps; rank 0 logs (other ranks hold a dummy experiment)."""

    def __init__(self, every: int = 10):
        self.every = max(1, every)
        self.steps = 0

    def on_predict_start(self, trainer, pl_module) -> None:
        experiment = trainer.logger.experiment
        if hasattr(experiment, "define_metric"):
            experiment.define_metric("live/iteration")
            experiment.define_metric("live/*", step_metric="live/iteration")

    def on_optimization_step(self, trainer, pl_module, step: Step) -> None:
        self.steps += 1
        if step.iteration % self.every == 0:
            point = {f"live/{name}": float(value.float().mean()) for name, value in step.terms.items()}
            trainer.logger.experiment.log({"live/iteration": self.steps, **point})


def run_names(output_dir: Path, override_dirname: str, multirun: bool) -> tuple[str | None, str]:
    """(group, name) for a job: grouped by sweep directory, named by overrides."""
    group = output_dir.parent.name if multirun else None
    return group, override_dirname or output_dir.name


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric metrics with nested blocks flattened (``best_threshold/mIoU``), for W&B."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[prefix + key] = value
    return out


def results_table(dataset, output_dir: Path, item_ids: list[str], max_rows: int):
    """A ``wandb.Table`` with one row per (item, prompt) of the completed items (the first ``max_rows``): the
    image with the prediction (and ground truth) as mask layers, IoU, the final value of every loss term, seconds.

    Rows are read from the run directory, so a resumed run's table covers the items it skipped too."""
    import wandb

    rows = []
    for index, item_id in enumerate(item_ids):
        if len(rows) >= max_rows:
            break
        record = read_result(item_dir(output_dir, item_id))
        if record is None or record.get("status") != "complete":
            continue
        item = dataset[index]
        image = item.display if item.display is not None else to_uint8_image(item.image)
        for entry in record.get("results", []):
            if len(rows) >= max_rows:
                break
            mask = Image.open(item_dir(output_dir, item_id) / entry["dir"] / "mask.png").convert("L")
            mask = np.asarray(mask.resize(image.shape[1::-1], Image.NEAREST)) > 127
            layers = {"prediction": {"mask_data": mask.astype(np.uint8), "class_labels": {1: entry["prompt"]}}}
            if item.mask is not None and item.mask.shape == image.shape[:2]:
                layers["ground truth"] = {"mask_data": item.mask, "class_labels": {1: "object", 255: "void"}}
            shown = wandb.Image(overlay(image, [mask.astype(np.float32)]), masks=layers)
            seconds = record.get("timings", {}).get("seconds")
            row = {"item": item_id, "prompt": entry["prompt"], "overlay": shown, "IoU": entry.get("iou")}
            rows.append({**row, **entry.get("final", {}), "seconds": seconds})
    columns = columns_of(rows) if rows else ["item", "prompt", "overlay", "IoU"]
    return wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])


def log_run_results(logger, metrics: dict[str, Any], dataset, output_dir: Path, item_ids: list[str], rows: int):
    """The run's metrics as summary values (one number each, not a history) and, when ``rows`` > 0, its results
    table."""
    logger.experiment.summary.update(flat_metrics(metrics))
    if rows > 0:
        logger.experiment.log({"results": results_table(dataset, output_dir, item_ids, rows)})


def log_sweep_summary(cfg, sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """The sweep's summary rows as a ``wandb.Table`` in a run of its own (job type ``sweep-summary``)."""
    import wandb

    mode = getattr(cfg.mode, "value", cfg.mode)
    if mode == "disabled" or not rows:
        return
    columns = columns_of(rows)
    run = wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group or sweep_dir.name,
        name=f"{sweep_dir.name} summary",
        job_type="sweep-summary",
        tags=list(cfg.tags),
        dir=str(sweep_dir),
        mode=mode,
        reinit="finish_previous",
    )
    try:
        run.log({"sweep_summary": wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])})
    finally:
        run.finish()
