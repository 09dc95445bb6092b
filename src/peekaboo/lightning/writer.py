"""Writes each item's files as soon as its batch finishes; rank 0 aggregates once every rank is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

from peekaboo.evaluation.results import aggregate, item_dir, write_item
from peekaboo.tasks.base import ItemArtifacts


class ItemWriter(BasePredictionWriter):
    def __init__(self, output_dir: str | Path, item_ids: list[str], extra_metrics: dict[str, Any] | None = None):
        super().__init__(write_interval="batch")
        self.output_dir, self.item_ids, self.extra = Path(output_dir), item_ids, extra_metrics or {}

    def write_on_batch_end(
        self,
        trainer,
        pl_module,
        prediction: list[ItemArtifacts],
        batch_indices,
        batch,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        for artifacts in prediction:
            write_item(item_dir(self.output_dir, artifacts.item_id), artifacts.files, artifacts.record)

    def on_predict_end(self, trainer, pl_module) -> None:
        trainer.strategy.barrier("peekaboo-aggregate")
        if trainer.is_global_zero:
            aggregate(self.output_dir, self.item_ids, self.extra)
