"""Latent-space compositing: an approximation of encoding the composite, with no VAE backward (off by default).

Instead of ``E(alpha * image + (1 - alpha) * colour)`` (encode with gradient, the original), blend latents:

    z = a * z_image + (1 - a) * z_colour,   a = alpha pooled to the latent grid (area average)

- ``z_image``: the image's posterior, encoded once per unit without gradient (the scene's foreground is the
  same tensor at every iteration); with ``sample_posterior`` a fresh sample per SDS sample, drawn from the
  unit's stream exactly where the pixel path draws its posterior noise.
- ``z_colour``: a colour -> latent lookup built once per compositor: the latents of solid images on a
  ``lattice^3`` grid of RGB colours (encoded at the SDS resolution, whole latent maps so that border effects
  are kept), trilinearly interpolated at each background colour. One-time cost ``lattice^3`` encodes (125 by
  default: negligible on a GPU, minutes for SD on a CPU) and zero VAE work per iteration. Exact at the
  lattice colours, and everywhere for an encoder affine in colour.

Only ``a`` carries gradient, so the VAE is never differentiated and never called inside the loop. The
approximation ignores the encoder's nonlinearity and receptive field across the mask's edge; for the toy
world's identity "VAE" at working resolution = model resolution it is exact (tested).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Layers
from peekaboo.priors.base import DiffusionPrior, LatentDistribution


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize to size x size (the pixel path's upsampling before the VAE); identity if already there."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def pool_to_grid(alpha: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """alpha (N, 1, H, W) -> (N, 1, h, w): area average when shrinking (each latent cell's mean alpha),
    bilinear when growing, identity when equal."""
    if alpha.shape[-2:] == size:
        return alpha
    if alpha.shape[-2] >= size[0] and alpha.shape[-1] >= size[1]:
        return F.interpolate(alpha, size=size, mode="area")
    return F.interpolate(alpha, size=size, mode="bilinear", align_corners=False)


class ColourLatents:
    """A colour -> latent-map lookup: solid images on a lattice^3 RGB grid, encoded once, trilinear in between."""

    def __init__(self, prior: DiffusionPrior, resolution: int, lattice: int = 5, chunk: int = 8):
        if lattice < 2:
            raise ValueError(f"the colour lattice needs at least 2 points per axis, got {lattice}")
        self.lattice = lattice
        levels = torch.linspace(0, 1, lattice, device=prior.device)
        colours = torch.cartesian_prod(levels, levels, levels)  # (G^3, 3), index = (r * G + g) * G + b
        maps = []
        with torch.no_grad():
            for batch in colours.split(chunk):
                solid = batch[:, :, None, None].expand(-1, -1, resolution, resolution)
                maps.append(prior.encode(solid.contiguous()).mean)
        self.table = torch.cat(maps)  # (G^3, C, h, w)
        self.corners = torch.tensor(list(itertools.product((0, 1), repeat=3)), device=prior.device)  # (8, 3)
        self.strides = torch.tensor([lattice * lattice, lattice, 1], device=prior.device)

    def __call__(self, colours: torch.Tensor) -> torch.Tensor:
        """colours (S, 3) in [0, 1] -> latents (S, C, h, w), without gradient."""
        position = colours.clamp(0, 1) * (self.lattice - 1)
        low = position.floor().clamp(max=self.lattice - 2)
        frac = position - low  # (S, 3) in [0, 1]
        index = ((low.long()[:, None, :] + self.corners) * self.strides).sum(-1)  # (S, 8)
        weight = torch.where(self.corners.bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)  # (S, 8)
        return torch.einsum("sk,skchw->schw", weight, self.table[index])


class LatentCompositor:
    """Blends the layers of a scene in latent space; see the module docstring."""

    def __init__(self, prior: DiffusionPrior, resolution: int, sample_posterior: bool = True, lattice: int = 5):
        self.prior, self.resolution, self.sample_posterior, self.lattice = prior, resolution, sample_posterior, lattice
        self._colours: ColourLatents | None = None
        self._encoded: tuple[torch.Tensor, int, LatentDistribution] | None = None  # (foreground, version, latents)
        self._index: dict[tuple[int, ...], torch.Tensor] = {}

    def foreground_latents(self, foreground: torch.Tensor) -> LatentDistribution:
        """The foreground's posterior, encoded once per scene: cached while the same, unmodified tensor comes."""
        cached = self._encoded
        if cached is None or cached[0] is not foreground or cached[1] != foreground._version:
            with torch.no_grad():
                dist = self.prior.encode(resize_images(foreground, self.resolution))
            self._encoded = cached = (foreground, foreground._version, dist)
        return cached[2]

    def colour_latents(self, colours: torch.Tensor) -> torch.Tensor:
        if self._colours is None:
            self._colours = ColourLatents(self.prior, self.resolution, self.lattice)
        return self._colours(colours)

    def _sample_unit(self, counts: Sequence[int], device: torch.device) -> torch.Tensor:
        """Sample -> unit index on the device, made once per layout (no host-to-device copy per iteration)."""
        key = tuple(counts)
        if key not in self._index:
            self._index[key] = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts)).to(device)
        return self._index[key]

    def __call__(self, layers: Layers, rng: UnitRandom, counts: Sequence[int]) -> torch.Tensor:
        """Latents (S, C, h, w) of the composites, differentiable w.r.t. ``layers.alpha`` only."""
        image = self.foreground_latents(layers.foreground)
        index = self._sample_unit(counts, image.mean.device)
        mean = image.mean.index_select(0, index)
        if self.sample_posterior and image.std is not None:
            z_image = mean + image.std.index_select(0, index) * rng.randn(counts, *mean.shape[1:])
        else:
            z_image = mean
        z_colour = self.colour_latents(layers.background)
        a = pool_to_grid(layers.alpha, tuple(mean.shape[-2:])).index_select(0, index)
        return a * z_image + (1 - a) * z_colour
