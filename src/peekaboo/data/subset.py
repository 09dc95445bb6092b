"""``subset=N`` or ``subset=[id,...]``: run on part of any dataset without changing any item's index or seed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from peekaboo.data.base import Item, ItemDataset
from peekaboo.data.digest import input_digest
from peekaboo.errors import ConfigError


class ItemSubset(Dataset):
    """The first N items, or the items with the given ids (in dataset order). Items keep their own ``index``."""

    def __init__(self, dataset: ItemDataset, subset: int | list[str]):
        ids = list(dataset.item_ids)
        if isinstance(subset, bool | str) or not isinstance(subset, int | Sequence):
            raise ConfigError("subset", f"expected null, a number of items or a list of item ids, got {subset!r}")
        if isinstance(subset, int):
            if subset < 1:
                raise ConfigError("subset", f"must be >= 1, got {subset}")
            self.indices = list(range(min(subset, len(ids))))
        else:
            wanted = [str(s) for s in subset]
            unknown = sorted(set(wanted) - set(ids))
            if unknown or not wanted:
                raise ConfigError(
                    "subset",
                    f"unknown item ids {unknown[:5]}; the dataset's ids look like {ids[:3]}"
                    if unknown
                    else "the list of item ids is empty",
                )
            chosen = set(wanted)
            self.indices = [i for i, item_id in enumerate(ids) if item_id in chosen]
        self.dataset = dataset
        self.item_ids = [ids[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Item:
        return self.dataset[self.indices[index]]

    def input_digest(self, index: int) -> str | None:
        return input_digest(self.dataset, self.indices[index])


def select_items(dataset: ItemDataset, subset: Any) -> ItemDataset:
    """``dataset`` itself when ``subset`` is None, else the ``ItemSubset``."""
    return dataset if subset is None else ItemSubset(dataset, subset)
