"""``task=rgba``: text -> an RGB image and its alpha, optimised jointly with the Peekaboo loss (paper, Sec. 5).

Each unit owns one learnable 4-channel image (``param``: Fourier by default, raster optionally); RGB is the
first three channels and alpha the fourth. Every iteration composites it over ``loss.n_backgrounds`` of the
fixed solid ``backgrounds`` (distinct ones, drawn from the unit's own random stream) and scores each composite
with the guidance terms; ``loss.lambda_alpha`` (0 in the original recipe) penalises alpha.

``transparent=false`` generates a plain RGB image instead (3 channels, no alpha, no backgrounds): the paper's
implicit-vs-pixel ablation (appendix B.2, Fig. 12-13). Either way the scene records ``pixel_variance`` (the
variance over pixels and channels of the composites scored, see ``unit_pixel_variance``) at every iteration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites, Scene, unit_pixel_variance
from peekaboo.errors import ConfigError
from peekaboo.io.images import gif_bytes, mask_png, png_bytes, to_uint8_image
from peekaboo.params.parametrization import Parametrization
from peekaboo.tasks.base import ItemArtifacts, Task, Unit, history_csv, item_record, timings
from peekaboo.tasks.configs import original_backgrounds
from peekaboo.tasks.segment import prompt_slug


class RGBAScene(Scene):
    """A learnable RGBA image per unit over ``n_backgrounds`` distinct solid backgrounds per iteration.

    With a 3-channel ``image`` (opaque RGB generation) each unit's ``n_backgrounds`` samples are the image itself
    (each still gets its own noise and timestep) and nothing is penalised; its outputs carry alpha = 1."""

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
        image = self.image()  # (U, 4, H, W) or (U, 3, H, W) in (0, 1)
        u, channels, h, w = image.shape
        if channels == 3:
            composite = image[:, None].expand(u, self.n_backgrounds, 3, h, w).reshape(-1, 3, h, w)
            return Composites(composite, None, {"rgba": _opaque(image.detach())}, stats=self._stats(composite))
        # One uniform draw per background and unit; the smallest n_backgrounds pick distinct backgrounds.
        picks = rng.rand([1] * u, len(self.backgrounds)).argsort(dim=1)[:, : self.n_backgrounds]
        background = self.backgrounds[picks].view(u, self.n_backgrounds, 3, 1, 1)
        rgb, alpha = image[:, None, :3], image[:, None, 3:]
        composite = (alpha * rgb + (1 - alpha) * background).reshape(-1, 3, h, w)
        return Composites(composite, image[:, 3:], {"rgba": image.detach()}, stats=self._stats(composite))

    def _stats(self, composite: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pixel_variance": unit_pixel_variance(composite, len(self.counts))}

    @torch.no_grad()
    def outputs(self) -> dict[str, torch.Tensor]:
        image = self.image()
        return {"rgba": image if image.shape[1] == 4 else _opaque(image)}


def _opaque(rgb: torch.Tensor) -> torch.Tensor:
    """(U, 3, H, W) -> (U, 4, H, W) with alpha 1."""
    return torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1)


def checkerboard(height: int, width: int, squares: int = 8) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: light and mid grey squares, ``squares`` along the longer side."""
    step = max(1, max(height, width) // max(1, squares))
    ys, xs = np.indices((height, width)) // step
    return np.where(((ys + xs) % 2 == 0)[..., None], 0.9, 0.6).repeat(3, axis=2)


def over(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Composite (H, W, 4) float RGBA over (H, W, 3) or (3,) float -> (H, W, 3) float."""
    alpha = rgba[..., 3:]
    return alpha * rgba[..., :3] + (1 - alpha) * background


class RGBATask(Task):
    """Builds the RGBA scene of a batch and writes each image with its transparency."""

    generates_images = True

    def __init__(
        self,
        size: int = 512,
        backgrounds: dict[str, list[float]] | None = None,
        checker: int = 8,
        transparent: bool = True,
    ):
        self.size = size
        self.backgrounds = dict(backgrounds if backgrounds is not None else original_backgrounds())
        self.checker = checker
        self.transparent = transparent

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        super().check_config(cfg)
        backgrounds = cfg.task.backgrounds
        if not backgrounds:
            raise ConfigError("task.backgrounds", "needs at least one background colour")
        for name, colour in backgrounds.items():
            if len(colour) != 3 or not all(0 <= c <= 1 for c in colour):
                raise ConfigError(f"task.backgrounds.{name}", f"must be an RGB triple in [0, 1], got {list(colour)}")
        if cfg.loss.n_backgrounds > len(backgrounds):
            raise ConfigError(
                "loss.n_backgrounds",
                f"task=rgba composites over distinct backgrounds: at most {len(backgrounds)} (task.backgrounds), "
                f"got {cfg.loss.n_backgrounds}",
            )

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
        channels = 4 if self.transparent else 3
        image = parametrization(generators=rng.init, channels=channels, height=self.size, width=self.size)
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
            on_board = to_uint8_image(over(rgba, board))  # the RGB image itself when opaque (alpha 1)
            entry = {"prompt": unit.prompt, "dir": prefix.rstrip("/") or "."}
            if self.transparent:
                files[prefix + "rgba.png"] = png_bytes(to_uint8_image(rgba))
                files[prefix + "alpha.png"] = mask_png(rgba[..., 3])
                files[prefix + "on_checkerboard.png"] = png_bytes(on_board)
                for name, colour in self.backgrounds.items():
                    files[prefix + f"on_{name}.png"] = png_bytes(to_uint8_image(over(rgba, np.asarray(colour))))
                alpha = rgba[..., 3]
                entry.update(alpha_mean=float(alpha.mean()), opaque_fraction=float((alpha > 0.5).mean()))
                alphas.append(alpha)
            else:
                files[prefix + "image.png"] = png_bytes(on_board)
            if "rgba" in result.frames:
                frames = result.frames["rgba"][:, n].permute(0, 2, 3, 1).numpy()
                files[prefix + "timelapse.gif"] = gif_bytes([to_uint8_image(over(f, board)) for f in frames])
            files[prefix + "history.csv"] = history_csv(result.history, [n])
            entry["final"] = {k: float(v[-1, n]) for k, v in result.history.items()}
            entries.append(entry)
            for name, values in result.history.items():
                history.setdefault(name, []).append(values[:, n].tolist())
            preview = on_board if preview is None else preview
        times = timings(result.seconds, result.iterations, len(result.outputs["rgba"]), len(mine))
        rec = item_record(item, mine[0][1].seed, [u.prompt for _, u in mine], entries, times, record)
        rec["timelapse_iterations"] = result.frame_iterations
        return ItemArtifacts(item.item_id, files, rec, preview=preview, masks=alphas, history=history)
