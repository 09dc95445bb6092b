"""Deterministic toy scenes with ground truth: one target object, distractors, a textured background.

Objects are placed at the prior's default template grid and coloured near the prior's colour means, so
the target is in-distribution for ``ToyPrior``; the background is textured and low-saturation, unlike
the prior's plain background, so a mask must separate object from texture, not find a plain region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation

from peekaboo.errors import DataError
from peekaboo.toy.shapes import rasterize, template_grid
from peekaboo.toy.vocabulary import CLASSES, DEFAULT_COLOUR_SCALE, ToyClass, colour_mean, parse_prompt

BACKGROUNDS: tuple[str, ...] = ("blobs", "stripes", "plain", "noise")
MAX_SCENE_ATTEMPTS = 100


@dataclass(frozen=True)
class ToyObject:
    """One drawn object: its class, placement in pixels and actual RGB in [-1, 1]."""

    cls: ToyClass
    cx: float
    cy: float
    size: float
    rgb: tuple[float, float, float]

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable description for result metadata."""
        return {
            "prompt": self.cls.prompt,
            "cx": self.cx,
            "cy": self.cy,
            "size": self.size,
            "rgb": list(self.rgb),
        }


@dataclass
class ToyScene:
    """A scene: image (3, H, W) float32 in [-1, 1], the target's binary mask (H, W) uint8 and the object label map
    (H, W) uint8: 0 background, 1 the target, 2... the distractors in order (for unsupervised segmenters)."""

    image: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    target: ToyObject
    distractors: list[ToyObject]
    background: str
    seed: int

    @property
    def prompt(self) -> str:
        return self.target.cls.prompt


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a dataset seeded with ``seed``: independent streams, no hash()."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0])


def make_scene(
    seed: int,
    size: int = 32,
    distractors: int = 1,
    background: str = "blobs",
    target: str | None = None,
    colour_jitter: float = 0.15,
    pixel_noise: float = 0.05,
    colour_scale: float = DEFAULT_COLOUR_SCALE,
) -> ToyScene:
    """Draw a scene; the same arguments give a bit-identical scene.

    ``target`` (a prompt, optional) fixes the target class, a bare shape fixing only the shape; otherwise
    it is uniform over all classes. Distractors are of other classes, each at a grid placement whose
    support stays at least one pixel away from every object already drawn.
    """
    if background not in BACKGROUNDS:
        raise DataError(f"unknown toy background {background!r}; expected one of {', '.join(BACKGROUNDS)}")
    candidates = CLASSES if target is None else parse_prompt(target)
    rng = np.random.Generator(np.random.PCG64(seed))
    grid = template_grid(size)
    objects = _place_objects(rng, grid, size, candidates, distractors)
    image = _background(rng, background, size)
    placed, target_soft, labels = [], None, np.zeros((size, size), np.uint8)
    for index, (cls, (cx, cy, obj_size)) in enumerate(objects, start=1):
        rgb = np.clip(np.array(colour_mean(cls.colour, colour_scale)) + rng.normal(0.0, colour_jitter, 3), -1, 1)
        soft = rasterize(cls.shape, [cx], [cy], [obj_size], size, size)[0]
        image = soft * rgb[:, None, None] + (1 - soft) * image
        target_soft = soft if target_soft is None else target_soft
        labels[soft >= 0.5] = index
        placed.append(ToyObject(cls, float(cx), float(cy), float(obj_size), tuple(float(c) for c in rgb)))
    image = np.clip(image + rng.normal(0.0, pixel_noise, image.shape), -1, 1).astype(np.float32)
    mask = (target_soft >= 0.5).astype(np.uint8)
    return ToyScene(image, mask, labels, placed[0], placed[1:], background, int(seed))


def _place_objects(
    rng: np.random.Generator, grid: np.ndarray, size: int, candidates: tuple[ToyClass, ...], distractors: int
) -> list[tuple[ToyClass, np.ndarray]]:
    """Target first, then each distractor uniform over grid placements clear of the objects placed so far."""
    for _ in range(MAX_SCENE_ATTEMPTS):
        target = candidates[rng.integers(len(candidates))]
        objects = [(target, grid[rng.integers(len(grid))])]
        cx, cy, obj_size = objects[0][1]
        occupied = rasterize(target.shape, [cx], [cy], [obj_size], size, size)[0] > 0
        others = [cls for cls in CLASSES if cls != target]
        for _ in range(distractors):
            cls = others[rng.integers(len(others))]
            supports = rasterize(cls.shape, grid[:, 0], grid[:, 1], grid[:, 2], size, size) > 0
            free = ~(supports & binary_dilation(occupied)[None]).any(axis=(1, 2))
            if not free.any():
                break
            choice = rng.choice(np.flatnonzero(free))
            objects.append((cls, grid[choice]))
            occupied |= supports[choice]
        else:
            return objects
    raise DataError(f"could not place {distractors} non-overlapping distractors in a {size}x{size} toy scene")


def _low_saturation_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) colours near the grey axis: grey level in [-0.6, 0.6], each channel within 0.2 of it.

    Vocabulary colours sit about 1 away from the grey axis, so the background never forms a distractor.
    """
    return rng.uniform(-0.6, 0.6, (n, 1)) + rng.uniform(-0.2, 0.2, (n, 3))


def _background(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """A (3, H, W) float64 background texture in [-1, 1]; lengths scale with ``size`` / 32."""
    scale = size / 32
    coords = np.arange(size) + 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    base = _low_saturation_colours(rng, 1)[0][:, None, None]
    if kind == "plain":
        return np.broadcast_to(base, (3, size, size)).copy()
    if kind == "blobs":
        n = int(rng.integers(4, 9))
        centres, radii = rng.uniform(0, size, (n, 2)), rng.uniform(3, 8, n) * scale
        colours = _low_saturation_colours(rng, n)
        image = np.broadcast_to(base, (3, size, size)).copy()
        for (bx, by), radius, colour in zip(centres, radii, colours, strict=True):
            weight = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * radius**2))
            image = weight * colour[:, None, None] + (1 - weight) * image
        return image
    if kind == "stripes":
        angle, period, phase = rng.uniform(0, np.pi), rng.uniform(4, 10) * scale, rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase)
        weight = np.clip(0.5 + 1.5 * wave, 0, 1)
        other = _low_saturation_colours(rng, 1)[0][:, None, None]
        return weight * base + (1 - weight) * other
    # "noise": luminance noise with a little chroma noise, still close to the grey axis.
    noise = rng.normal(0, 0.25, (1, size, size)) + rng.normal(0, 0.05, (3, size, size))
    return np.clip(base + noise, -1, 1)
