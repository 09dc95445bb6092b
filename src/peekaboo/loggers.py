"""Weights & Biases: the Lightning logger, and a callback that logs each item as soon as it is written."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback

from peekaboo.tasks.base import ItemArtifacts


class WandbMode(enum.Enum):
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class NoLoggerConfig:
    """Schema of ``logger=none``: plain files only."""

    _target_: str | None = None
    name: str = "none"


@dataclass
class WandbLoggerConfig:
    """Schema of ``logger=wandb``. Runs are grouped by sweep and named by the job's overrides by default."""

    _target_: str = "peekaboo.loggers.wandb_logger"
    name: str = "wandb"
    project: str = "peekaboo"
    entity: str | None = None
    mode: WandbMode = WandbMode.offline
    group: str | None = None  # None: the sweep directory's name in a multirun
    run_name: str | None = None  # None: the job's overrides (or the run directory's name)
    tags: list[str] = field(default_factory=list)
    log_items: bool = True  # overlay (with mask layers) and loss curves per item


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
                xs = list(range(len(curves[0])))
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
