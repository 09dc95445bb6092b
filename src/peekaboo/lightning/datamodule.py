"""Serves the items that still need work; Lightning shards them over ranks without padding.

An item that cannot be loaded (a ``PeekabooError``, e.g. an unreadable image) travels out of a DataLoader worker
process as a ``LoadFailure`` and is raised in the main process as the same one-line ``DataError``, rather than
as torch's re-raised worker traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from peekaboo.data.base import Item, collate_items
from peekaboo.data.digest import input_digest
from peekaboo.errors import DataError, PeekabooError
from peekaboo.evaluation.results import ANOTHER_CONFIG, NOT_DONE, item_dir, stale_reason

log = logging.getLogger("peekaboo")


@dataclass
class LoadFailure:
    """What a worker returns instead of an item it could not load: the error's message."""

    message: str


class PendingItems(Dataset):
    """The pending items of the dataset; a load error becomes a ``LoadFailure`` (picklable, message intact)."""

    def __init__(self, dataset: Dataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Item | LoadFailure:
        try:
            item = self.dataset[self.indices[index]]
            item.digest = input_digest(self.dataset, self.indices[index])
            return item
        except PeekabooError as err:
            return LoadFailure(str(err))


def raise_load_failures(batch: list[Item | LoadFailure]) -> None:
    for entry in batch:
        if isinstance(entry, LoadFailure):
            raise DataError(entry.message)


def item_ids(dataset: Dataset) -> list[str]:
    """Every item's id without loading images (datasets expose ``item_ids``)."""
    return list(dataset.item_ids)


class ItemDataModule(LightningDataModule):
    """``resume``: skip items whose result.json is complete for this configuration and these inputs (see
    ``peekaboo.evaluation.results``)."""

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
        pending = []
        for i, item_id in enumerate(ids):
            reason = stale_reason(item_dir(self.output_dir, item_id), self.config_hash, input_digest(self.dataset, i))
            if reason is not None:
                pending.append(i)
                if reason not in (NOT_DONE, ANOTHER_CONFIG):  # a changed input or a damaged result: say so
                    log.warning("item '%s' is redone: %s", item_id, reason)
        return pending

    def setup(self, stage: str) -> None:
        if self.pending is None:
            # Rank 0 decides and broadcasts, so every rank shards the same list even while files appear.
            rank_zero = self.trainer is None or self.trainer.is_global_zero
            pending = self.pending_indices() if rank_zero else None
            self.pending = self.trainer.strategy.broadcast(pending, src=0) if self.trainer is not None else pending
            skipped = len(self.dataset) - len(self.pending)
            if rank_zero and skipped:
                log.info("%d items complete, skipped (resume=true; resume=false recomputes them)", skipped)

    def on_before_batch_transfer(self, batch: list[Item | LoadFailure], dataloader_idx: int) -> list[Item]:
        raise_load_failures(batch)  # in the main process, whichever process loaded the batch
        return batch

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            PendingItems(self.dataset, self.pending),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_items,
            persistent_workers=self.num_workers > 0,
        )
