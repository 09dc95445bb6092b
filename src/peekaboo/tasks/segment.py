"""``task=segment``: Peekaboo segmentation of each item's image for each of its prompts."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from peekaboo.data.base import Item
from peekaboo.engine.optimize import EngineResult
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import SegmentationScene
from peekaboo.io.images import OVERLAY_COLOURS, gif_bytes, mask_png, overlay, png_bytes, resize_map, to_uint8_image
from peekaboo.metrics import SWEEP_LEVELS, score_alpha
from peekaboo.postprocess import PostprocessConfig
from peekaboo.tasks.base import ItemArtifacts, Unit, timings, units_of


@dataclass
class SegmentTaskConfig:
    """Schema of ``task=segment``."""

    _target_: str = "peekaboo.tasks.segment.SegmentTask"
    name: str = "segment"
    threshold: float = 0.5  # mask.png = alpha > threshold; also the fixed threshold of the metrics
    score_thresholds: list[float] = field(default_factory=list)  # extra thresholds scored per item
    sweep_levels: int = SWEEP_LEVELS  # per-item counts at thresholds k/levels (best-threshold metrics); 0: off
    save_npy: bool = True
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)  # before thresholding


def prompt_slug(index: int, prompt: str) -> str:
    return f"{index:02d}_" + (re.sub(r"[^A-Za-z0-9]+", "_", prompt).strip("_")[:40] or "prompt")


class SegmentTask:
    """Builds the segmentation scene of a batch and renders each item's masks, overlays and scores."""

    def __init__(
        self,
        threshold: float = 0.5,
        score_thresholds: list[float] | None = None,
        save_npy: bool = True,
        sweep_levels: int = SWEEP_LEVELS,
        postprocess: PostprocessConfig | dict | None = None,
    ):
        if not isinstance(postprocess, PostprocessConfig):
            postprocess = PostprocessConfig(**(postprocess or {}))
        self.postprocess = postprocess
        self.threshold = float(threshold if self.postprocess.threshold is None else self.postprocess.threshold)
        self.thresholds = sorted({self.threshold, *(float(t) for t in score_thresholds or [])})
        self.sweep_levels = sweep_levels
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
        out = []
        for i, item in enumerate(items):
            mine = [(n, u) for n, u in enumerate(units) if u.item == i]
            out.append(self._item(item, mine, result, record))
        return out

    def _item(self, item: Item, mine: list[tuple[int, Unit]], result: EngineResult, record: dict) -> ItemArtifacts:
        display = item.display if item.display is not None else to_uint8_image(item.image)
        size = display.shape[:2]
        files: dict[str, bytes] = {}
        prompts, masks, history = [], [], {}
        single = len(mine) == 1
        for n, unit in mine:
            alpha = result.outputs["alpha"][n, 0].numpy()
            scored = self.postprocess(alpha) if self.postprocess.enabled else alpha
            prefix = "" if single else f"prompts/{prompt_slug(unit.prompt_index, unit.prompt)}/"
            files[prefix + "alpha.png"] = mask_png(alpha)
            files[prefix + "mask.png"] = mask_png((scored > self.threshold).astype(np.float32))
            if self.save_npy:
                files[prefix + "alpha.npy"] = _npy_bytes(alpha)
            shown = resize_map(alpha, size)
            masks.append(shown)
            files[prefix + "overlay.png"] = png_bytes(overlay(display, [shown]))
            if "alpha" in result.frames:
                frames = result.frames["alpha"][:, n, 0].numpy()
                files[prefix + "timelapse.gif"] = gif_bytes([to_uint8_image(np.repeat(f[None], 3, 0)) for f in frames])
            entry = {
                "prompt": unit.prompt,
                "dir": prefix.rstrip("/") or ".",
                "final": {k: float(v[-1, n]) for k, v in result.history.items()},
            }
            if not single:  # this prompt's colour in the combined overlay.png
                entry["overlay_colour"] = OVERLAY_COLOURS[(len(masks) - 1) % len(OVERLAY_COLOURS)].astype(int).tolist()
            if item.mask is not None:
                scores = score_alpha(scored, item.mask, self.thresholds, self.sweep_levels)
                at = scores["thresholds"].index(self.threshold)
                entry.update(
                    threshold=self.threshold,
                    iou=scores["iou"][at],
                    intersection=scores["intersection"][at],
                    union=scores["union"][at],
                    scores=scores,
                )
            prompts.append(entry)
            for name, values in result.history.items():
                history.setdefault(name, []).append(values[:, n].tolist())
        if not single:
            files["overlay.png"] = png_bytes(overlay(display, masks))
        rec = {
            "item_id": item.item_id,
            "index": item.index,
            "seed": mine[0][1].seed,
            "prompts": [u.prompt for _, u in mine],
            "results": prompts,
            **({"iou": prompts[0]["iou"]} if single and "iou" in prompts[0] else {}),
            "timings": timings(result, len(mine)),
            "timelapse_iterations": result.frame_iterations if "alpha" in result.frames else [],
            "postprocess": self.postprocess.name,
            "meta": item.meta,
            **record,
        }
        return ItemArtifacts(item.item_id, files, rec, preview=display, masks=masks, gt=item.mask, history=history)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32))
    return buffer.getvalue()
