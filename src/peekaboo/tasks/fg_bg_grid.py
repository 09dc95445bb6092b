"""``task=fg_bg_grid``: the foreground/background "analogous experiment" (the paper's appendix E, Fig. 17-18).

F learnable foregrounds, F learnable alpha masks and B learnable backgrounds (``param``: Fourier by default, as the
paper's neural textures) make F x B composites ``alpha_f * fg_f + (1 - alpha_f) * bg_b``; each cell is scored with
its own combined prompt (``data=fg_bg_grid``). Everything is learned, unlike Peekaboo where only the alpha is: a
foreground must look right over every background and a background under every foreground, so the alpha is pushed
onto what the foreground prompt names.

Units are the cells (one SDS sample per cell and iteration, all cells of a batch in one UNet call), each with its
own random stream seeded from the item's seed and the cell index; the layers belong to the item (initialised from
its seed) and are shared by its cells, so they form their own optimizer groups (``GridScene.parameter_groups``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult
from peekaboo.engine.random import UnitRandom, derive_seed
from peekaboo.engine.scene import Composites, Scene, unit_pixel_variance
from peekaboo.errors import ConfigError
from peekaboo.io.images import gif_bytes, grid, png_bytes, to_uint8_image
from peekaboo.params.parametrization import Parametrization
from peekaboo.tasks.base import (
    GRID_DATA,
    GRID_PAIR,
    ItemArtifacts,
    Task,
    Unit,
    check_generated_image,
    history_csv,
    item_record,
    timings,
)

# Seed keys after every unit's init (0) and step (1) streams: a cell's seed, and each layer's initialisation.
CELL_STREAM, LAYER_STREAM = 2, 3
LAYERS = ("foregrounds", "alphas", "backgrounds")


class GridScene(Scene):
    """The layers of ``n_items`` grids and their F x B composites, one unit per cell (item-, then fg-major)."""

    def __init__(
        self,
        foregrounds: Parametrization,
        alphas: Parametrization,
        backgrounds: Parametrization,
        n_items: int,
        timelapse_size: int,
        samples: int = 1,
    ):
        super().__init__()
        self.foregrounds, self.alphas, self.backgrounds = foregrounds, alphas, backgrounds
        self.n_items, self.timelapse_size, self.samples = n_items, timelapse_size, samples
        self.n_fg, self.n_bg = foregrounds.n_units // n_items, backgrounds.n_units // n_items
        self.counts = [samples] * (n_items * self.n_fg * self.n_bg)

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """One group per layer (foreground, alpha, background) of each item."""
        return [layer.unit_parameters(k) for layer in self.layers() for k in range(layer.n_units)]

    def layers(self) -> tuple[Parametrization, Parametrization, Parametrization]:
        return self.foregrounds, self.alphas, self.backgrounds

    def _cells(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(cells (U, 3, H, W), each cell's alpha (U, 1, H, W))."""
        fg, alpha, bg = (layer() for layer in self.layers())
        i, f, b = self.n_items, self.n_fg, self.n_bg
        h, w = fg.shape[-2:]
        fg, alpha, bg = fg.view(i, f, 1, 3, h, w), alpha.view(i, f, 1, 1, h, w), bg.view(i, 1, b, 3, h, w)
        cells = alpha * fg + (1 - alpha) * bg  # (I, F, B, 3, H, W)
        return cells.reshape(-1, 3, h, w), alpha.expand(i, f, b, 1, h, w).reshape(-1, 1, h, w)

    def _small(self, cells: torch.Tensor) -> torch.Tensor:
        """Cells at the timelapse's size (area-averaged), so frames stay small on the device."""
        if cells.shape[-1] <= self.timelapse_size:
            return cells
        return F.interpolate(cells, size=(self.timelapse_size, self.timelapse_size), mode="area")

    def forward(self, rng: UnitRandom) -> Composites:
        cells, alpha = self._cells()
        images = cells if self.samples == 1 else cells.repeat_interleave(self.samples, dim=0)
        stats = {"pixel_variance": unit_pixel_variance(images, len(self.counts))}
        return Composites(images, alpha, {"timelapse": self._small(cells.detach())}, stats=stats)

    @torch.no_grad()
    def outputs(self) -> dict[str, torch.Tensor]:
        fg, alpha, bg = (layer() for layer in self.layers())
        return {
            "foregrounds": fg,
            "alphas": alpha,
            "backgrounds": bg,
            "timelapse": self._small(self._cells()[0]),
        }


def cell_seed(item_seed: int, cell: int) -> int:
    return derive_seed(item_seed, CELL_STREAM, cell)


def layer_generators(item_seeds: list[int], layer: str, count: int) -> list[torch.Generator]:
    """CPU generators initialising ``count`` layers of one kind per item, from the item's seed only."""
    kind = LAYERS.index(layer)
    return [
        torch.Generator().manual_seed(derive_seed(seed, LAYER_STREAM, kind, k))
        for seed in item_seeds
        for k in range(count)
    ]


def grid_shape(items: list[Item]) -> tuple[int, int]:
    """(F, B) of a batch; every item of a run has the same grid."""
    shapes = {(len(item.meta["foregrounds"]), len(item.meta["backgrounds"])) for item in items}
    if len(shapes) != 1:
        raise ValueError(f"every grid of a batch must have the same F x B, got {sorted(shapes)}")
    return shapes.pop()


class FgBgGridTask(Task):
    """Builds the grid scene of a batch of grids and writes each grid, its layers and its timelapse."""

    generates_images = True

    def __init__(self, size: int = 512, timelapse_size: int = 128):
        self.size, self.timelapse_size = size, timelapse_size

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        if OmegaConf.select(cfg, "data._target_") != GRID_DATA:
            raise ConfigError("data", GRID_PAIR)
        check_generated_image(cfg, "fg_bg_grid")
        positive(cfg, "task.timelapse_size")

    def units(self, items: list[Item], base_seed: int) -> list[Unit]:
        """One unit per cell, item-major then foreground-major, each seeded from its item's seed and its index."""
        return [
            Unit(i, cell, prompt, base_seed + item.index, cell_seed(base_seed + item.index, cell))
            for i, item in enumerate(items)
            for cell, prompt in enumerate(item.prompts)
        ]

    def build_scene(
        self,
        items: list[Item],
        units: list[Unit],
        rng: UnitRandom,
        parametrization: Callable[..., Parametrization],
        guides: torch.Tensor | None,
        images: torch.Tensor | None,
        n_backgrounds: int,
    ) -> GridScene:
        """``n_backgrounds`` (loss.n_backgrounds) is the number of SDS samples per cell and iteration."""
        n_fg, n_bg = grid_shape(items)
        seeds = [next(u.seed for u in units if u.item == i) for i in range(len(items))]

        def layer(name: str, count: int, channels: int) -> Parametrization:
            generators = layer_generators(seeds, name, count)
            return parametrization(generators=generators, channels=channels, height=self.size, width=self.size)

        layers = layer("foregrounds", n_fg, 3), layer("alphas", n_fg, 1), layer("backgrounds", n_bg, 3)
        scene = GridScene(*layers, n_items=len(items), timelapse_size=self.timelapse_size, samples=n_backgrounds)
        return scene.to(rng.device)

    def artifacts(
        self, items: list[Item], units: list[Unit], result: EngineResult, record: dict
    ) -> list[ItemArtifacts]:
        n_fg, n_bg = grid_shape(items)
        return [self._item(item, i, n_fg, n_bg, units, result, record) for i, item in enumerate(items)]

    def _item(
        self, item: Item, i: int, n_fg: int, n_bg: int, units: list[Unit], result: EngineResult, record: dict
    ) -> ItemArtifacts:
        out = result.outputs
        fg = out["foregrounds"][i * n_fg : (i + 1) * n_fg].permute(0, 2, 3, 1).numpy()  # (F, H, W, 3)
        alpha = out["alphas"][i * n_fg : (i + 1) * n_fg, 0].numpy()  # (F, H, W)
        bg = out["backgrounds"][i * n_bg : (i + 1) * n_bg].permute(0, 2, 3, 1).numpy()  # (B, H, W, 3)
        cells = alpha[:, None, ..., None] * fg[:, None] + (1 - alpha[:, None, ..., None]) * bg[None]  # (F, B, H, W, 3)
        grid_image = grid([[to_uint8_image(cells[f, b]) for b in range(n_bg)] for f in range(n_fg)])
        files = {
            "grid.png": png_bytes(grid_image),
            "foregrounds.png": png_bytes(grid([[to_uint8_image(x) for x in fg]])),
            "alphas.png": png_bytes(grid([[to_uint8_image(np.repeat(a[..., None], 3, 2)) for a in alpha]])),
            "backgrounds.png": png_bytes(grid([[to_uint8_image(x) for x in bg]])),
        }
        mine = [n for n, u in enumerate(units) if u.item == i]  # its cells, fg-major
        foregrounds, backgrounds = item.meta["foregrounds"], item.meta["backgrounds"]
        keys = [
            {"cell": c, "foreground": foregrounds[c // n_bg], "background": backgrounds[c % n_bg]}
            for c in range(len(mine))
        ]
        if "timelapse" in result.frames:
            frames = result.frames["timelapse"][:, mine].permute(0, 1, 3, 4, 2).numpy()  # (T, F*B, s, s, 3)
            tiles = [
                [[to_uint8_image(frame[f * n_bg + b]) for b in range(n_bg)] for f in range(n_fg)] for frame in frames
            ]
            files["timelapse.gif"] = gif_bytes([grid(rows) for rows in tiles])
        files["history.csv"] = history_csv(result.history, mine, keys)
        entries = [
            {
                **key,
                "prompt": units[n].prompt,
                "dir": ".",
                "final": {k: float(v[-1, n]) for k, v in result.history.items()},
            }
            for n, key in zip(mine, keys, strict=True)
        ]
        seed = units[mine[0]].seed
        times = timings(result.seconds, result.iterations, len(units), len(mine))
        rec = item_record(item, seed, [units[n].prompt for n in mine], entries, times, record)
        rec.update(
            grid={"foregrounds": n_fg, "backgrounds": n_bg},
            foregrounds=[
                {"prompt": p, "alpha_mean": float(a.mean()), "opaque_fraction": float((a > 0.5).mean())}
                for p, a in zip(foregrounds, alpha, strict=True)
            ],
            backgrounds=list(backgrounds),
            timelapse_iterations=result.frame_iterations,
        )
        history = {name: [values[:, n].tolist() for n in mine] for name, values in result.history.items()}
        return ItemArtifacts(item.item_id, files, rec, preview=grid_image, history=history)
