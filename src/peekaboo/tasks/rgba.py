"""``task=rgba``: text -> an RGB image and its alpha, optimised jointly with the Peekaboo loss (paper, Sec. 5).

Each unit owns one learnable 4-channel image (``param``: Fourier by default, raster optionally); RGB is the
first three channels and alpha the fourth. Every iteration composites it over ``loss.n_backgrounds`` of the
fixed solid ``backgrounds`` (distinct ones, drawn from the unit's own random stream) and scores each composite
with the guidance terms; ``loss.lambda_alpha`` (0 in the original recipe) penalises alpha.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites, Scene
from peekaboo.io.images import gif_bytes, mask_png, png_bytes, to_uint8_image
from peekaboo.params.parametrization import Parametrization
from peekaboo.tasks.base import ItemArtifacts, Unit, item_record, timings, units_of
from peekaboo.tasks.segment import prompt_slug


def _original_backgrounds() -> dict[str, list[float]]:
    """The authors' five solid backgrounds."""
    names = ("black", "white", "red", "green", "blue")
    colours = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    return dict(zip(names, colours, strict=True))


@dataclass
class RGBATaskConfig:
    """Schema of ``task=rgba``."""

    _target_: str = "peekaboo.tasks.rgba.RGBATask"
    name: str = "rgba"
    size: int = 512  # side of the generated image (the preset follows the prior's resolution)
    backgrounds: dict[str, list[float]] = field(default_factory=_original_backgrounds)  # name -> RGB in [0, 1]
    checker: int = 8  # squares per side of the checkerboard behind on_checkerboard.png and the timelapse


class RGBAScene(Scene):
    """A learnable RGBA image per unit over ``n_backgrounds`` distinct solid backgrounds per iteration."""

    def __init__(self, image: Parametrization, backgrounds: torch.Tensor, n_backgrounds: int):
        super().__init__()
        if not 1 <= n_backgrounds <= len(backgrounds):
            raise ValueError(f"n_backgrounds must lie in [1, {len(backgrounds)}], got {n_backgrounds}")
        self.image = image
        self.register_buffer("backgrounds", backgrounds, persistent=False)  # (B, 3)
        self.n_backgrounds = n_backgrounds
        self.counts = [n_backgrounds] * image.n_units

    def unit_parameters(self, unit: int) -> list[nn.Parameter]:
        return self.image.unit_parameters(unit)

    def forward(self, rng: UnitRandom) -> Composites:
        rgba = self.image()  # (U, 4, H, W) in (0, 1)
        u, _, h, w = rgba.shape
        # One uniform draw per background and unit; the smallest n_backgrounds pick distinct backgrounds.
        picks = rng.rand([1] * u, len(self.backgrounds)).argsort(dim=1)[:, : self.n_backgrounds]
        background = self.backgrounds[picks].view(u, self.n_backgrounds, 3, 1, 1)
        rgb, alpha = rgba[:, None, :3], rgba[:, None, 3:]
        composite = alpha * rgb + (1 - alpha) * background
        return Composites(composite.reshape(-1, 3, h, w), rgba[:, 3:], {"rgba": rgba.detach()})

    @torch.no_grad()
    def outputs(self) -> dict[str, torch.Tensor]:
        return {"rgba": self.image()}


def checkerboard(height: int, width: int, squares: int = 8) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: light and mid grey squares, ``squares`` along the longer side."""
    step = max(1, max(height, width) // max(1, squares))
    ys, xs = np.indices((height, width)) // step
    return np.where(((ys + xs) % 2 == 0)[..., None], 0.9, 0.6).repeat(3, axis=2)


def over(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Composite (H, W, 4) float RGBA over (H, W, 3) or (3,) float -> (H, W, 3) float."""
    alpha = rgba[..., 3:]
    return alpha * rgba[..., :3] + (1 - alpha) * background


class RGBATask:
    """Builds the RGBA scene of a batch and writes each image with its transparency."""

    def __init__(self, size: int = 512, backgrounds: dict[str, list[float]] | None = None, checker: int = 8):
        self.size = size
        self.backgrounds = dict(backgrounds if backgrounds is not None else _original_backgrounds())
        self.checker = checker

    def units(self, items: list[Item], base_seed: int) -> list[Unit]:
        return units_of(items, base_seed)

    def build_scene(
        self,
        items: list[Item],
        units: list[Unit],
        rng: UnitRandom,
        parametrization: Callable[..., Parametrization],
        guides: torch.Tensor | None,
        images: torch.Tensor | None,
        n_backgrounds: int,
    ) -> RGBAScene:
        """Item images and guides are ignored: everything is generated."""
        image = parametrization(generators=rng.init, channels=4, height=self.size, width=self.size)
        backgrounds = torch.tensor(list(self.backgrounds.values()), dtype=torch.float32, device=rng.device)
        return RGBAScene(image.to(rng.device), backgrounds, n_backgrounds)

    def artifacts(
        self, items: list[Item], units: list[Unit], result: EngineResult, record: dict
    ) -> list[ItemArtifacts]:
        return [
            self._item(item, [(n, u) for n, u in enumerate(units) if u.item == i], result, record)
            for i, item in enumerate(items)
        ]

    def _item(self, item: Item, mine: list[tuple[int, Unit]], result: EngineResult, record: dict) -> ItemArtifacts:
        files: dict[str, bytes] = {}
        entries, history, alphas, preview = [], {}, [], None
        board = checkerboard(self.size, self.size, self.checker)
        for n, unit in mine:
            prefix = "" if len(mine) == 1 else f"prompts/{prompt_slug(unit.prompt_index, unit.prompt)}/"
            rgba = result.outputs["rgba"][n].permute(1, 2, 0).numpy()  # (H, W, 4)
            on_board = to_uint8_image(over(rgba, board))
            files[prefix + "rgba.png"] = png_bytes(to_uint8_image(rgba))
            files[prefix + "alpha.png"] = mask_png(rgba[..., 3])
            files[prefix + "on_checkerboard.png"] = png_bytes(on_board)
            for name, colour in self.backgrounds.items():
                files[prefix + f"on_{name}.png"] = png_bytes(to_uint8_image(over(rgba, np.asarray(colour))))
            if "rgba" in result.frames:
                frames = result.frames["rgba"][:, n].permute(0, 2, 3, 1).numpy()
                files[prefix + "timelapse.gif"] = gif_bytes([to_uint8_image(over(f, board)) for f in frames])
            alpha = rgba[..., 3]
            entries.append(
                {
                    "prompt": unit.prompt,
                    "dir": prefix.rstrip("/") or ".",
                    "alpha_mean": float(alpha.mean()),
                    "opaque_fraction": float((alpha > 0.5).mean()),
                    "final": {k: float(v[-1, n]) for k, v in result.history.items()},
                }
            )
            for name, values in result.history.items():
                history.setdefault(name, []).append(values[:, n].tolist())
            alphas.append(alpha)
            preview = on_board if preview is None else preview
        times = timings(result.seconds, result.iterations, len(result.outputs["rgba"]), len(mine))
        rec = item_record(item, mine[0][1].seed, [u.prompt for _, u in mine], entries, times, record)
        return ItemArtifacts(item.item_id, files, rec, preview=preview, masks=alphas, history=history)
