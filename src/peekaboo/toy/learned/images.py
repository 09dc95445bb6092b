"""Training images drawn from exactly the distribution the analytic prior (``model=toy``) models, with captions.

For a class c = (shape, colour) and a template m uniform over the shape's grid placements:
``x = m f + (1 - m) g + n`` per channel, f ~ N(mu_c, sf^2), g ~ N(0, sg^2), n ~ N(0, sn^2 I) (see
``peekaboo.priors.toy``). Captions are '<colour> <shape>', a bare shape (any colour, as the analytic prior reads
it) or '' (the unconditional branch, for classifier-free guidance).
"""

from __future__ import annotations

import numpy as np
import torch

from peekaboo.toy.shapes import rasterize, template_grid
from peekaboo.toy.vocabulary import CLASSES, COLOURS, DEFAULT_COLOUR_SCALE, SHAPES, colour_mean


def captions() -> list[str]:
    """Every caption the model is trained on: the 12 class prompts, the 3 bare shapes, and '' last."""
    return [cls.prompt for cls in CLASSES] + list(SHAPES) + [""]


class ToyImageSampler:
    """Draws batches (images (N, 3, H, W) in about [-1, 1], caption indices into :func:`captions`) on a CPU."""

    def __init__(
        self,
        size: int = 32,
        sf: float = 0.15,
        sg: float = 0.6,
        sn: float = 0.05,
        colour_scale: float = DEFAULT_COLOUR_SCALE,
        bare_shape_fraction: float = 0.2,
        empty_fraction: float = 0.1,
    ):
        grid = template_grid(size)
        self.size, self.sf, self.sg, self.sn = size, sf, sg, sn
        self.templates = torch.from_numpy(np.stack([rasterize(s, *grid.T, size, size) for s in SHAPES]))  # (S, K, H, W)
        self.means = torch.tensor([colour_mean(c, colour_scale) for c in COLOURS])  # (colours, 3)
        self.bare_shape_fraction, self.empty_fraction = bare_shape_fraction, empty_fraction

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        classes = torch.randint(len(CLASSES), (n,), generator=generator)
        shape, colour = classes // len(COLOURS), classes % len(COLOURS)
        placement = torch.randint(self.templates.shape[1], (n,), generator=generator)
        m = self.templates[shape, placement][:, None]  # (n, 1, H, W)
        f = self.means[colour] + self.sf * torch.randn(n, 3, generator=generator)
        g = self.sg * torch.randn(n, 3, generator=generator)
        noise = self.sn * torch.randn(n, 3, self.size, self.size, generator=generator)
        images = m * f[..., None, None] + (1 - m) * g[..., None, None] + noise
        kind = torch.rand(n, generator=generator)
        caption = torch.where(kind < self.empty_fraction, len(captions()) - 1, classes)
        bare = (kind >= self.empty_fraction) & (kind < self.empty_fraction + self.bare_shape_fraction)
        caption = torch.where(bare, len(CLASSES) + shape, caption)
        return images, caption
