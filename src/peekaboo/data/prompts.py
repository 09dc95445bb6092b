"""``data=prompts``: text-only items (no image) for generation tasks such as ``task=rgba``."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from peekaboo.data.base import Item
from peekaboo.data.image import safe_id
from peekaboo.data.transforms import check_prompts
from peekaboo.errors import DataError


class PromptsDataset(Dataset):
    """One item per (prompt, repeat), ids ``<index>_<prompt>``; item i's seed is ``cfg.seed + i`` as everywhere."""

    def __init__(self, prompts: Any, repeats: int = 1):
        if repeats < 1:
            raise DataError(f"data.repeats must be >= 1, got {repeats}")
        self.entries = [(p, r) for p in check_prompts(prompts, "data.prompts") for r in range(repeats)]
        self.item_ids = [f"{n:03d}_{safe_id(p)[:40]}" for n, (p, _) in enumerate(self.entries)]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Item:
        prompt, repeat = self.entries[index]
        return Item(
            index=index,
            item_id=self.item_ids[index],
            image=None,
            prompts=[prompt],
            meta={"prompt": prompt, "repeat": repeat},
        )
