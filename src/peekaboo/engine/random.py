"""Per-unit random streams, so a unit's result depends on its seed only.

Every optimisation unit (one image x one prompt, or one generated image) owns two generators derived from
its seed: ``init`` on the CPU (parameter initialisation: identical on every device) and ``step`` on the
compute device (backgrounds, timesteps, noise). Draws for a batch are made unit by unit and concatenated,
so batching units together, sharding them over devices or resuming a run never changes any unit's draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

_INIT_STREAM, _STEP_STREAM = 0, 1


def derive_seed(seed: int, *stream: int) -> int:
    """An independent 63-bit seed for (seed, stream...), so init and step streams never coincide.

    Streams 0 and 1 are every unit's init and step streams; tasks derive further seeds with longer keys
    (e.g. the grid's cells: ``(2, cell)``)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *stream]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


class UnitRandom:
    """The generators of a batch of units; draws take ``counts`` (samples per unit) and concatenate."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str):
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.init = [torch.Generator().manual_seed(derive_seed(s, _INIT_STREAM)) for s in self.seeds]
        self.step = [torch.Generator(self.device).manual_seed(derive_seed(s, _STEP_STREAM)) for s in self.seeds]

    def __len__(self) -> int:
        return len(self.seeds)

    def rand(self, counts: Sequence[int], *shape: int) -> torch.Tensor:
        return torch.cat(
            [torch.rand(n, *shape, generator=g, device=self.device) for g, n in zip(self.step, counts, strict=False)]
        )

    def randn(self, counts: Sequence[int], *shape: int) -> torch.Tensor:
        return torch.cat(
            [torch.randn(n, *shape, generator=g, device=self.device) for g, n in zip(self.step, counts, strict=False)]
        )

    def randint(self, counts: Sequence[int], low: int | Sequence[int], high: int | Sequence[int]) -> torch.Tensor:
        """Integers uniform in [low, high] inclusive (int64); bounds shared, or per unit (sequences)."""
        lows = [low] * len(counts) if isinstance(low, int) else low
        highs = [high] * len(counts) if isinstance(high, int) else high
        return torch.cat(
            [
                torch.randint(lo, hi + 1, (n,), generator=g, device=self.device)
                for g, n, lo, hi in zip(self.step, counts, lows, highs, strict=False)
            ]
        )

    @classmethod
    def join(cls, parts: Sequence[UnitRandom]) -> UnitRandom:
        """The streams of several batches of units as one (the same generators, not copies): draws advance them."""
        joined = cls.__new__(cls)
        joined.seeds = [s for part in parts for s in part.seeds]
        joined.device = parts[0].device
        joined.init = [g for part in parts for g in part.init]
        joined.step = [g for part in parts for g in part.step]
        return joined
