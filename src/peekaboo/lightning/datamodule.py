"""Serves the items that still need work; Lightning shards them over ranks without padding."""

from __future__ import annotations

import logging
from pathlib import Path

from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Subset

from peekaboo.data.base import collate_items
from peekaboo.evaluation.results import is_complete, item_dir

log = logging.getLogger("peekaboo")


def item_ids(dataset: Dataset) -> list[str]:
    """Every item's id without loading images (datasets expose ``item_ids``)."""
    return list(dataset.item_ids)


class ItemDataModule(LightningDataModule):
    """``resume``: skip items whose result.json is complete for this configuration (``peekaboo.evaluation.results``)."""

    def __init__(
        self,
        dataset: Dataset,
        output_dir: str | Path,
        config_hash: str,
        batch_size: int = 1,
        num_workers: int = 0,
        resume: bool = True,
    ):
        super().__init__()
        self.dataset, self.output_dir, self.config_hash = dataset, Path(output_dir), config_hash
        self.batch_size, self.num_workers, self.resume = batch_size, num_workers, resume
        self.pending: list[int] | None = None

    def pending_indices(self) -> list[int]:
        ids = item_ids(self.dataset)
        if not self.resume:
            return list(range(len(ids)))
        return [
            i for i, item_id in enumerate(ids) if not is_complete(item_dir(self.output_dir, item_id), self.config_hash)
        ]

    def setup(self, stage: str) -> None:
        if self.pending is None:
            # Rank 0 decides and broadcasts, so every rank shards the same list even while files appear.
            rank_zero = self.trainer is None or self.trainer.is_global_zero
            pending = self.pending_indices() if rank_zero else None
            self.pending = self.trainer.strategy.broadcast(pending, src=0) if self.trainer is not None else pending
            skipped = len(self.dataset) - len(self.pending)
            if rank_zero and skipped:
                log.info("%d items complete, skipped (resume=true; resume=false recomputes them)", skipped)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            Subset(self.dataset, self.pending),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_items,
            persistent_workers=self.num_workers > 0,
        )
