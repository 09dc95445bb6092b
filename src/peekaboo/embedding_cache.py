"""Text embeddings computed once per distinct prompt per process (prompts repeat across items and batches)."""

from __future__ import annotations

from collections.abc import Callable

import torch


class EmbeddingCache:
    """Calls ``encode`` only for prompts it has not seen; returns one row per requested prompt."""

    def __init__(self, encode: Callable[[list[str]], torch.Tensor]):
        self.encode = encode
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.encode(missing), strict=True))
        return torch.stack([self.cache[p] for p in prompts])
