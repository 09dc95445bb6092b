"""The Python API: ``Peekaboo`` (frozen models built once, reused across calls) and the one-shot ``segment``.

It composes the same Hydra config as ``run.py`` (the compose API, no ``hydra.main``, so it works in notebooks),
validates it like a run, and optimises through the same engine (``PeekabooModule.optimize_batch``). Images are
centre-cropped and resized to the working resolution (``data.resolution``; the toy world works at its own 32x32)
and the masks are mapped back to the input image's full size and orientation, 0 outside the working crop.

    from peekaboo import Peekaboo
    pk = Peekaboo(model="sd15", overrides={"param": "fourier_bilateral"})
    result = pk.segment("dog.jpg", ["a dog", "a couch"])
    result.masks  # (2, H, W) bool at dog.jpg's size
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from peekaboo.config.compose import CONF, compose_checked
from peekaboo.config.overrides import as_overrides, merge_overrides
from peekaboo.config.validate import validate
from peekaboo.data.base import Item
from peekaboo.data.configs import Crop
from peekaboo.data.image import crop_item
from peekaboo.data.transforms import as_rgb, check_prompts, crop_box
from peekaboo.engine.optimize import Step
from peekaboo.errors import ConfigError
from peekaboo.io.images import overlay, to_uint8_image
from peekaboo.io.rle import coco_rle
from peekaboo.lightning.module import PeekabooModule

ImageInput = str | Path | Image.Image | np.ndarray
Overrides = Mapping[str, Any] | Iterable[str] | None
Progress = Callable[[int, int, "np.ndarray | None"], None]  # (iterations done, total, (P, h, w) alphas or None)


@dataclass
class SegmentationResult:
    """Masks of one image, one per prompt, at the input image's full size and orientation."""

    prompts: list[str]
    masks: np.ndarray  # (P, H, W) bool: the post-processed alpha > task.threshold; False outside the working crop
    alphas: np.ndarray  # (P, H, W) float32 in [0, 1]: the soft masks; 0 outside the working crop
    image: np.ndarray  # (H, W, 3) uint8: the input image, upright
    seconds: float  # optimisation wall time
    iterations: int
    crop_box: tuple[int, int, int, int]  # (top, left, bottom, right) of the working crop in the image
    working_alphas: np.ndarray  # (P, h, w) float32: the soft masks at the working resolution, as optimised

    def rgba(self, k: int = 0) -> np.ndarray:
        """(H, W, 4) uint8: the image with prompt ``k``'s soft mask as its alpha channel (a cut-out)."""
        return np.dstack([self.image, to_uint8_image(self.alphas[k])])

    def rle(self) -> list[dict[str, Any]]:
        """Every prompt's mask as COCO RLE (``{"size": [H, W], "counts": str}``, ``pycocotools.mask.decode``)."""
        return [coco_rle(mask) for mask in self.masks]

    def overlay(self) -> np.ndarray:
        """(H, W, 3) uint8: the image tinted by every soft mask, one colour per prompt (as ``overlay_full.png``)."""
        return overlay(self.image, list(self.alphas))


@dataclass
class RGBAResult:
    """One generated image with its transparency (``task=rgba``)."""

    prompt: str
    rgba: np.ndarray  # (H, W, 4) uint8
    seconds: float


def model_overrides(model: str | Path) -> list[str]:
    """A preset name (``conf/model/<name>.yaml``) or a local Stable Diffusion folder -> overrides."""
    presets = sorted(path.stem for path in (CONF / "model").glob("*.yaml"))
    if str(model) in presets:
        return [f"model={model}"]
    folder = Path(model).expanduser()
    if folder.is_dir():
        return ["model=sd15", f"model.path={folder.resolve()}", "model.local_files_only=true"]
    raise ConfigError(
        "model",
        f"{str(model)!r} is neither a preset ({', '.join(presets)}) nor a local Stable Diffusion folder "
        "(one holding unet/ vae/ text_encoder/ tokenizer/ scheduler/)",
    )


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Peekaboo:
    """Peekaboo on one model, built once. ``model``: a preset (``toy``, ``tiny_sd``, ``sd15``, ...) or a local SD
    folder; ``overrides``: Hydra overrides for every call (``["param=fourier_bilateral"]`` or
    ``{"schedule.iterations": 50}``); ``device``: default CUDA when available, else the CPU.

    Each call may add overrides of its own (``pk.segment(img, "a dog", param="raster")``); the frozen parts
    (prior, objective, guide, task) are built once per distinct configuration of what they read and cached.
    """

    def __init__(
        self, model: str | Path = "toy", overrides: Overrides = None, device: str | torch.device | None = None
    ):
        self.model = str(model)
        self.device = torch.device(device) if device is not None else default_device()
        self.overrides = merge_overrides(model_overrides(model), as_overrides(overrides))
        self._built: dict[str, dict[str, Any]] = {}
        self.config = self.compose(["data=image"])  # validated now, so a bad override fails at construction
        self.module(self.config)

    def compose(self, base: list[str], call: Overrides = None) -> DictConfig:
        """The job config: ``base`` (the task's groups), then this object's overrides, then the call's."""
        cfg = compose_checked(merge_overrides(base, self.overrides, as_overrides(call)))
        validate(cfg)
        if cfg.method._target_ != "peekaboo.lightning.module.PeekabooModule":
            raise ConfigError("method", f"the Python API runs Peekaboo; method={cfg.method.name} runs with run.py")
        return cfg

    def module(self, cfg: DictConfig) -> PeekabooModule:
        """A module for ``cfg`` whose frozen parts are built once per ``PeekabooModule.build_key``."""
        module = PeekabooModule(cfg)
        key = PeekabooModule.build_key(cfg)
        module.prepare(self.device, self._built.get(key))
        self._built[key] = module.built
        return module

    def segment(
        self, image: ImageInput, prompts: str | list[str], progress: Progress | None = None, **overrides: Any
    ) -> SegmentationResult:
        """One mask per prompt for ``image`` (a path, PIL image, or (H, W, 3) uint8 / [0, 1] float array).

        ``progress(iterations_done, total, alphas)`` is called after every step; ``alphas`` is the (P, h, w)
        float32 working-resolution masks when a timelapse frame is taken (every ``schedule.timelapse_every``),
        else None. ``overrides`` apply to this call (``**{"schedule.iterations": 50}``, ``param="raster"``)."""
        prompts = check_prompts(prompts, "prompts")
        cfg = self.config if not overrides else self.compose(["data=image"], overrides)
        rgb = as_rgb(image)
        box = crop_box(*rgb.shape[:2], Crop(getattr(cfg.data.crop, "value", cfg.data.crop)))
        item = crop_item(0, "image", rgb, prompts, cfg.data.resolution, box, None, {})
        module = self.module(cfg)
        start = time.perf_counter()
        _, result = module.optimize_batch([item], on_step=_progress_observer(progress, cfg.schedule.iterations))
        seconds = time.perf_counter() - start
        working = result.outputs["alpha"][:, 0].numpy()
        task = module.built["task"]
        frames = [task.in_original_frame(alpha, None, box, rgb.shape[:2]) for alpha in working]
        return SegmentationResult(
            prompts=prompts,
            masks=np.stack([mask for _, mask in frames]),
            alphas=np.stack([alpha for alpha, _ in frames]).astype(np.float32),
            image=rgb,
            seconds=seconds,
            iterations=result.iterations,
            crop_box=box,
            working_alphas=working.astype(np.float32),
        )

    def generate_rgba(self, prompt: str, progress: Progress | None = None, **overrides: Any) -> RGBAResult:
        """Text -> an RGBA image (``experiment=rgba``: the authors' recipe, adapted to the toy world by its
        tuning). ``progress`` as in ``segment``, with the generated alpha as the frame."""
        (prompt,) = check_prompts(prompt, "prompt")
        cfg = self.compose(["experiment=rgba"], overrides)
        module = self.module(cfg)
        item = Item(index=0, item_id="rgba", image=None, prompts=[prompt])
        start = time.perf_counter()
        _, result = module.optimize_batch([item], on_step=_progress_observer(progress, cfg.schedule.iterations, 3))
        return RGBAResult(prompt, to_uint8_image(result.outputs["rgba"][0]), time.perf_counter() - start)


def _progress_observer(progress: Progress | None, total: int, channel: int = 0) -> Callable[[Step], None] | None:
    """The engine observer that reports to ``progress``; frames are read to the host only when one is taken."""
    if progress is None:
        return None

    def observe(step: Step) -> None:
        frame = None
        if step.frame:
            maps = next(iter(step.frame.values()))  # (U, C, h, w): the scene's single snapshot map
            frame = maps[:, channel].float().cpu().numpy()
        progress(step.iteration + 1, total, frame)

    return observe


_CACHE: dict[str, Peekaboo] = {}


def segment(
    image: ImageInput,
    prompts: str | list[str],
    model: str | Path = "toy",
    progress: Progress | None = None,
    **overrides,
) -> SegmentationResult:
    """One-shot ``Peekaboo(model).segment(image, prompts, **overrides)``; the models stay built between calls
    (one ``Peekaboo`` per model, its built parts cached per configuration)."""
    key = str(model)
    if key not in _CACHE:
        _CACHE[key] = Peekaboo(model)
    return _CACHE[key].segment(image, prompts, progress=progress, **overrides)
