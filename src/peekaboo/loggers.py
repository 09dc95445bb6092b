"""Weights & Biases: the Lightning logger, and a callback that logs each item as soon as it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback
from PIL import Image

from peekaboo.config.schema import WandbMode
from peekaboo.evaluation.results import item_dir, read_result
from peekaboo.io.images import overlay, to_uint8_image
from peekaboo.io.tables import columns_of
from peekaboo.tasks.base import ItemArtifacts


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


class WandbItemLogger(Callback):
    """Logs each item's overlay with mask layers and its loss curves (rank 0's items under DDP)."""

    def on_predict_batch_end(
        self, trainer, pl_module, outputs: list[ItemArtifacts], batch, batch_idx, dataloader_idx=0
    ):
        import wandb

        experiment = trainer.logger.experiment
        for art in outputs:
            log = {}
            if art.preview is not None:
                masks = {
                    f"prediction {k}: {p}": {"mask_data": (m > 0.5).astype(np.uint8), "class_labels": {1: p}}
                    for k, (m, p) in enumerate(zip(art.masks, art.record["prompts"], strict=False))
                }
                if art.gt is not None and art.gt.shape == art.preview.shape[:2]:
                    masks["ground truth"] = {"mask_data": art.gt, "class_labels": {1: "object", 255: "void"}}
                log[f"items/{art.item_id}/overlay"] = wandb.Image(art.preview, masks=masks)
            for name, curves in art.history.items():
                xs = [list(range(len(curve))) for curve in curves]  # prompts may stop at different iterations
                log[f"items/{art.item_id}/{name}"] = wandb.plot.line_series(
                    xs=xs, ys=curves, keys=art.record["prompts"], title=f"{art.item_id} {name}", xname="iteration"
                )
            if "iou" in art.record:
                log["item_iou"] = art.record["iou"]
            experiment.log(log)


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
    """A ``wandb.Table`` with one row per (item, prompt): image, prompt, ground truth and thresholded prediction
    overlays at the ground truth's resolution, IoU; the first ``max_rows`` rows of the completed items."""
    import wandb

    table = wandb.Table(columns=["item", "prompt", "image", "ground truth", "prediction", "IoU"])
    for index, item_id in enumerate(item_ids):
        record = read_result(item_dir(output_dir, item_id))
        if record is None or record.get("status") != "complete":
            continue
        item = dataset[index]
        image = item.display if item.display is not None else to_uint8_image(item.image)
        truth = None if item.mask is None else wandb.Image(overlay(image, [(item.mask == 1).astype(np.float32)]))
        for entry in record.get("results", []):
            if len(table.data) >= max_rows:
                return table
            mask = Image.open(item_dir(output_dir, item_id) / entry["dir"] / "mask.png").convert("L")
            mask = np.asarray(mask.resize(image.shape[1::-1], Image.NEAREST), dtype=np.float32) / 255
            prediction = wandb.Image(overlay(image, [mask]))
            table.add_data(item_id, entry["prompt"], wandb.Image(image), truth, prediction, entry.get("iou"))
    return table


def log_run_results(logger, metrics: dict[str, Any], dataset, output_dir: Path, item_ids: list[str], rows: int):
    """The run's metrics (history and summary) and, when ``rows`` > 0, its results table."""
    flat = flat_metrics(metrics)
    logger.log_metrics(flat)
    logger.experiment.summary.update(flat)
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
