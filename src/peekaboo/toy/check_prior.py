"""Sample check of the toy SD: do its samples show the prompted shape and colour?

``python -m peekaboo.toy.check_prior [--per-class 8] [--steps 50] [--guidance 7.5] [--grid samples.png]``
draws ``per-class`` DDIM samples of each of the 12 classes (seeds 0..per-class-1) and classifies each by the
toy template that fits it best (least squares of ``f m + g (1 - m)`` per channel: the shape) and the colour mean
nearest its mean colour inside that template. Prints the accuracy and writes the grid (one row per class).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from peekaboo.toy.learned import weights_path
from peekaboo.toy.learned.sampling import generate, load_pipeline, save_grid
from peekaboo.toy.shapes import rasterize, template_grid
from peekaboo.toy.vocabulary import CLASSES, COLOURS, DEFAULT_COLOUR_SCALE, SHAPES, ToyClass, colour_mean


@dataclass
class CheckResult:
    prompted: list[ToyClass]
    found: list[ToyClass]
    images: torch.Tensor  # (N, 3, H, W) in [-1, 1]

    @property
    def correct(self) -> np.ndarray:
        return np.array([p == f for p, f in zip(self.prompted, self.found, strict=True)])

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def colour_accuracy(self) -> float:
        return float(np.mean([p.colour == f.colour for p, f in zip(self.prompted, self.found, strict=True)]))

    @property
    def shape_accuracy(self) -> float:
        return float(np.mean([p.shape == f.shape for p, f in zip(self.prompted, self.found, strict=True)]))


def classify(images: torch.Tensor) -> list[ToyClass]:
    """The toy class each image (N, 3, H, W) in [-1, 1] shows: best-fitting template, then nearest colour."""
    n, _, h, w = images.shape
    grid = template_grid(h)
    masks = torch.from_numpy(np.concatenate([rasterize(s, *grid.T, h, w) for s in SHAPES])).double()
    m = masks.view(len(masks), -1)  # (K, HW)
    x = images.double().reshape(n, 3, -1)
    # least squares of x ~ f m + g (1 - m) per channel: explained energy u^T (B^T B)^-1 u with u = B^T x
    mm, m1, ones = (m * m).sum(1), m.sum(1), torch.full((len(m),), float(h * w), dtype=torch.float64)
    gram = torch.stack([torch.stack([mm, m1 - mm]), torch.stack([m1 - mm, ones - 2 * m1 + mm])]).permute(2, 0, 1)
    inside = x @ m.T  # (N, 3, K)
    u = torch.stack([inside, x.sum(-1, keepdim=True) - inside], -1)  # (N, 3, K, 2)
    explained = (u * torch.linalg.solve(gram, u.unsqueeze(-1)).squeeze(-1)).sum(-1).sum(1)  # (N, K)
    best = explained.argmax(1)
    means = torch.tensor([colour_mean(c, DEFAULT_COLOUR_SCALE) for c in COLOURS], dtype=torch.float64)
    found = []
    for i, k in enumerate(best.tolist()):
        region = m[k] >= 0.5
        colour = x[i][:, region].mean(1)
        nearest = int(((means - colour) ** 2).sum(1).argmin())
        found.append(ToyClass(SHAPES[k // len(grid)], COLOURS[nearest]))
    return found


def check(pipe, per_class: int = 8, steps: int = 50, guidance_scale: float = 7.5, batch: int = 48) -> CheckResult:
    """``per_class`` samples of every class, seeds 0..per_class-1 (the same noise for every class)."""
    prompted = [cls for cls in CLASSES for _ in range(per_class)]
    seeds = [s for _ in CLASSES for s in range(per_class)]
    images = torch.cat(
        [
            generate(pipe, [c.prompt for c in prompted[i : i + batch]], seeds[i : i + batch], steps, guidance_scale)
            for i in range(0, len(prompted), batch)
        ]
    )
    return CheckResult(prompted, classify(images), images.cpu())


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=weights_path(), help="the saved pipeline (default: the shipped weights)")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    parser.add_argument("--grid", default="toy_sd_samples.png", help="where the grid PNG goes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = check(load_pipeline(args.path), args.per_class, args.steps, args.guidance)
    correct = result.correct.reshape(len(CLASSES), args.per_class)
    for cls, row in zip(CLASSES, correct, strict=True):
        print(f"{cls.prompt:16s} {row.sum()}/{args.per_class}")
    print(
        f"accuracy: {result.accuracy:.3f} ({result.correct.sum()}/{len(result.correct)}), colour "
        f"{result.colour_accuracy:.3f}, shape {result.shape_accuracy:.3f}; grid: {args.grid}"
    )
    save_grid(result.images, args.per_class, args.grid)
    return result.accuracy


if __name__ == "__main__":
    main()
