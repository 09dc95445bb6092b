"""Training images drawn by the analytic prior itself (``model=toy`` models their distribution exactly), captioned.

Captions are '<colour> <shape>', a bare shape (any colour, as the analytic prior reads it) or '' (the
unconditional branch, for classifier-free guidance).
"""

from __future__ import annotations

import torch

from peekaboo.priors.toy import ToyPrior
from peekaboo.toy.vocabulary import CLASSES, COLOURS, SHAPES, ToyDistribution


def captions() -> list[str]:
    """Every caption the model is trained on: the 12 class prompts, the 3 bare shapes, and '' last."""
    return [cls.prompt for cls in CLASSES] + list(SHAPES) + [""]


class ToyImageSampler:
    """Draws batches (images (N, 3, H, W) in about [-1, 1], caption indices into :func:`captions`) on a CPU."""

    def __init__(
        self,
        distribution: ToyDistribution | None = None,
        size: int = 32,
        bare_shape_fraction: float = 0.2,
        empty_fraction: float = 0.1,
    ):
        d = distribution or ToyDistribution()
        self.prior = ToyPrior(size, d.sf, d.sg, d.sn, d.colour_scale)
        self.bare_shape_fraction, self.empty_fraction = bare_shape_fraction, empty_fraction

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        classes = torch.randint(len(CLASSES), (n,), generator=generator)
        images, _ = self.prior.draw(classes, generator)
        kind = torch.rand(n, generator=generator)
        caption = torch.where(kind < self.empty_fraction, len(captions()) - 1, classes)
        bare = (kind >= self.empty_fraction) & (kind < self.empty_fraction + self.bare_shape_fraction)
        caption = torch.where(bare, len(CLASSES) + classes // len(COLOURS), caption)  # the class's shape
        return images, caption
