"""``task=segment``: Peekaboo segmentation of each item's image for each of its prompts."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import SegmentationScene
from peekaboo.io.images import gif_bytes, mask_png, overlay, png_bytes, resize_map, to_uint8_image
from peekaboo.metrics import score_alpha
from peekaboo.tasks.base import ItemArtifacts, Unit, item_record, units_of


@dataclass
class SegmentTaskConfig:
    """Schema of ``task=segment``."""

    _target_: str = "peekaboo.tasks.segment.SegmentTask"
    name: str = "segment"
    threshold: float = 0.5  # mask.png = alpha > threshold; also the fixed threshold of the metrics
    score_thresholds: list[float] = field(default_factory=list)  # extra thresholds scored per item (sweeps)
    save_npy: bool = True


@dataclass
class UnitMaps:
    """Per-unit results to render: from the optimisation engine, or from a training-free baseline."""

    alpha: torch.Tensor  # (U, 1, H, W) soft maps in [0, 1] on the CPU
    masks: torch.Tensor | None = None  # (U, 1, H, W) bool binary masks; None: alpha > task.threshold
    frames: torch.Tensor | None = None  # (T, U, 1, H, W) timelapse frames
    history: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (iterations, U) loss curves
    seconds: float = 0.0  # wall time of the whole batch
    iterations: int = 0  # optimisation steps (engine) or UNet passes per unit (baselines)

    @classmethod
    def from_engine(cls, result: EngineResult) -> UnitMaps:
        return cls(
            result.outputs["alpha"],
            None,
            result.frames.get("alpha"),
            result.history,
            result.seconds,
            result.iterations,
        )


def prompt_slug(index: int, prompt: str) -> str:
    return f"{index:02d}_" + (re.sub(r"[^A-Za-z0-9]+", "_", prompt).strip("_")[:40] or "prompt")


class SegmentTask:
    """Builds the segmentation scene of a batch and renders each item's masks, overlays and scores."""

    def __init__(self, threshold: float = 0.5, score_thresholds: list[float] | None = None, save_npy: bool = True):
        self.threshold = threshold
        self.thresholds = sorted({float(threshold), *(float(t) for t in score_thresholds or [])})
        self.save_npy = save_npy

    def units(self, items: list[Item], base_seed: int) -> list[Unit]:
        return units_of(items, base_seed)

    def build_scene(
        self,
        items: list[Item],
        units: list[Unit],
        rng: UnitRandom,
        parametrization: Callable[..., torch.nn.Module],
        guides: torch.Tensor | None,
        images: torch.Tensor,
        n_backgrounds: int,
    ) -> SegmentationScene:
        """images (G, 3, H, W) on the device, one per item; units index them."""
        index = [u.item for u in units]
        _, _, h, w = images.shape
        alpha = parametrization(generators=rng.init, channels=1, height=h, width=w, guides=guides, guide_index=index)
        unit_images = images.index_select(0, torch.as_tensor(index, device=images.device))
        return SegmentationScene(unit_images, alpha.to(images.device), n_backgrounds)

    def artifacts(
        self, items: list[Item], units: list[Unit], result: EngineResult, record: dict
    ) -> list[ItemArtifacts]:
        return self.render(items, units, UnitMaps.from_engine(result), record)

    def render(self, items: list[Item], units: list[Unit], maps: UnitMaps, record: dict) -> list[ItemArtifacts]:
        """Each item's files, scores and result record from its units' maps."""
        out = []
        for i, item in enumerate(items):
            mine = [(n, u) for n, u in enumerate(units) if u.item == i]
            out.append(self._item(item, mine, maps, record))
        return out

    def _item(self, item: Item, mine: list[tuple[int, Unit]], maps: UnitMaps, record: dict) -> ItemArtifacts:
        display = item.display if item.display is not None else to_uint8_image(item.image)
        size = display.shape[:2]
        files: dict[str, bytes] = {}
        prompts, masks, history = [], [], {}
        single = len(mine) == 1
        for n, unit in mine:
            alpha = maps.alpha[n, 0].numpy()
            binary = alpha > self.threshold if maps.masks is None else maps.masks[n, 0].numpy().astype(bool)
            prefix = "" if single else f"prompts/{prompt_slug(unit.prompt_index, unit.prompt)}/"
            files[prefix + "alpha.png"] = mask_png(alpha)
            files[prefix + "mask.png"] = mask_png(binary.astype(np.float32))
            if self.save_npy:
                files[prefix + "alpha.npy"] = _npy_bytes(alpha)
            shown = resize_map(alpha, size)
            masks.append(shown)
            files[prefix + "overlay.png"] = png_bytes(overlay(display, [shown]))
            if maps.frames is not None:
                frames = maps.frames[:, n, 0].numpy()
                files[prefix + "timelapse.gif"] = gif_bytes([to_uint8_image(np.repeat(f[None], 3, 0)) for f in frames])
            entry = {
                "prompt": unit.prompt,
                "dir": prefix.rstrip("/") or ".",
                "final": {k: float(v[-1, n]) for k, v in maps.history.items()},
            }
            if item.mask is not None:
                entry.update(self._scores(alpha, None if maps.masks is None else binary, item.mask))
            prompts.append(entry)
            for name, values in maps.history.items():
                history.setdefault(name, []).append(values[:, n].tolist())
        if not single:
            files["overlay.png"] = png_bytes(overlay(display, masks))
        units_in_batch = maps.alpha.shape[0]
        timings = {
            "batch_seconds": maps.seconds,
            "batch_units": units_in_batch,
            "seconds": maps.seconds * len(mine) / units_in_batch,
            "iterations": maps.iterations,
            "seconds_per_iteration": maps.seconds / max(1, maps.iterations),
        }
        rec = item_record(item, mine[0][1].seed, [u.prompt for _, u in mine], prompts, timings, record)
        if single and "iou" in prompts[0]:
            rec["iou"] = prompts[0]["iou"]
        return ItemArtifacts(item.item_id, files, rec, preview=display, masks=masks, gt=item.mask, history=history)

    def _scores(self, alpha: np.ndarray, binary: np.ndarray | None, gt: np.ndarray) -> dict[str, Any]:
        """IoU of the mask (alpha > threshold, or the method's own binary mask) and the soft map's threshold sweep."""
        scores = score_alpha(alpha, gt, self.thresholds)
        if binary is None:
            at = scores["thresholds"].index(float(self.threshold))
            main = {k: scores[k][at] for k in ("iou", "intersection", "union")}
        else:  # the method's mask, resized like a soft map: bilinear, then > 0.5
            fixed = score_alpha(binary.astype(np.float32), gt, (0.5,))
            main = {k: fixed[k][0] for k in ("iou", "intersection", "union")}
        return {**main, "scores": scores}


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32))
    return buffer.getvalue()
