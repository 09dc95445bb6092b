"""``task=segment``: Peekaboo segmentation of each item's image for each of its prompts."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.data.transforms import uncrop
from peekaboo.engine.optimize import EngineResult
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import SegmentationScene
from peekaboo.engine.stopping import StopReason
from peekaboo.errors import ConfigError
from peekaboo.evaluation.metrics import SWEEP_LEVELS, score_alpha
from peekaboo.evaluation.postprocess import PostprocessConfig
from peekaboo.io.images import OVERLAY_COLOURS, gif_bytes, mask_png, overlay, png_bytes, resize_map, to_uint8_image
from peekaboo.io.rle import coco_rle
from peekaboo.tasks.base import ItemArtifacts, Task, Unit, history_csv, item_record, timings
from peekaboo.tasks.configs import FinalAlpha


@dataclass
class UnitMaps:
    """Per-unit results to render: from the optimisation engine, or from a training-free baseline."""

    alpha: torch.Tensor  # (U, 1, H, W) soft maps in [0, 1] on the CPU
    masks: torch.Tensor | None = None  # (U, 1, H, W) bool binary masks; None: alpha > task.threshold
    frames: torch.Tensor | None = None  # (T, U, 1, H, W) timelapse frames
    frame_iterations: list[int] = field(default_factory=list)  # the iteration of each frame
    history: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (iterations, U) loss curves
    seconds: float = 0.0  # wall time of the whole batch
    iterations: int = 0  # optimisation steps (engine) or UNet passes per unit (baselines)
    unit_iterations: list[int] | None = None  # steps each unit ran (engine), the length of its history
    stopped: list[str] | None = None  # why each unit stopped (engine)

    @classmethod
    def from_engine(cls, result: EngineResult) -> UnitMaps:
        frames = result.frames.get("alpha")
        n_units = result.outputs["alpha"].shape[0]
        return cls(
            alpha=result.outputs["alpha"],
            frames=frames,
            frame_iterations=result.frame_iterations if frames is not None else [],
            history=result.history,
            seconds=result.seconds,
            iterations=result.iterations,
            unit_iterations=result.unit_iterations or [result.iterations] * n_units,
            stopped=result.stopped or [StopReason.iterations.value] * n_units,
        )


def prompt_slug(index: int, prompt: str) -> str:
    return f"{index:02d}_" + (re.sub(r"[^A-Za-z0-9]+", "_", prompt).strip("_")[:40] or "prompt")


PROMPTS_DATA = "peekaboo.data.prompts.PromptsDataset"


class SegmentTask(Task):
    """Builds the segmentation scene of a batch and renders each item's masks, overlays and scores."""

    stops_on_convergence = True

    def __init__(
        self,
        threshold: float = 0.5,
        score_thresholds: list[float] | None = None,
        save_npy: bool = True,
        sweep_levels: int = SWEEP_LEVELS,
        postprocess: PostprocessConfig | dict | None = None,
        final_alpha: FinalAlpha | str = FinalAlpha.before_last_step,
        original_frame: bool = True,
        rle: bool = False,
    ):
        if not isinstance(postprocess, PostprocessConfig):
            postprocess = PostprocessConfig(**(postprocess or {}))
        self.postprocess = postprocess
        self.threshold = float(threshold if self.postprocess.threshold is None else self.postprocess.threshold)
        self.thresholds = sorted({self.threshold, *(float(t) for t in score_thresholds or [])})
        self.sweep_levels = sweep_levels
        self.save_npy = save_npy
        self.final_alpha = FinalAlpha(getattr(final_alpha, "value", final_alpha))
        self.original_frame, self.rle = original_frame, rle

    def scored(self, alpha: np.ndarray) -> np.ndarray:
        """The map that is thresholded and scored: the soft alpha after ``task.postprocess``."""
        return self.postprocess(alpha) if self.postprocess.enabled else alpha

    def in_original_frame(
        self, alpha: np.ndarray, own: np.ndarray | None, box: tuple[int, int, int, int], size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, mask) of one working-resolution map in the input image's frame (``size``): the working crop
        ``box`` resized back (bilinear), 0 / False outside it. The mask thresholds the resized scored map (or
        resizes a method's own binary mask ``own``), so its edges follow the soft map rather than its pixels."""
        if own is not None:
            return uncrop(alpha, box, size), uncrop(own.astype(np.float32), box, size) > 0.5
        return uncrop(alpha, box, size), uncrop(self.scored(alpha), box, size) > self.threshold

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        super().check_config(cfg)
        if OmegaConf.select(cfg, "data._target_") == PROMPTS_DATA:
            raise ConfigError("data", "data=prompts has no images to segment: use it with task=rgba (experiment=rgba)")
        threshold = cfg.task.threshold
        if not 0 < threshold < 1:
            raise ConfigError("task.threshold", f"must lie strictly between 0 and 1, got {threshold}")
        positive(cfg, "task.sweep_levels", 0)
        for key in ("blur_sigma", "dilate", "erode"):
            positive(cfg, f"task.postprocess.{key}", 0)
        if cfg.task.postprocess.std_scale <= 0:
            raise ConfigError("task.postprocess.std_scale", f"must be > 0, got {cfg.task.postprocess.std_scale}")

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
        return SegmentationScene(unit_images, alpha.to(images.device), n_backgrounds, self.final_alpha)

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
        full_frame = self.original_frame and item.original is not None and "crop_box" in item.meta
        files: dict[str, bytes] = {}
        prompts, masks, full_alphas, rles, history = [], [], [], [], {}
        single = len(mine) == 1
        for n, unit in mine:
            alpha = maps.alpha[n, 0].numpy()
            scored = self.scored(alpha)
            own = None if maps.masks is None else maps.masks[n, 0].numpy().astype(bool)  # a method's own mask
            binary = scored > self.threshold if own is None else own
            prefix = "" if single else f"prompts/{prompt_slug(unit.prompt_index, unit.prompt)}/"
            files[prefix + "alpha.png"] = mask_png(alpha)
            files[prefix + "mask.png"] = mask_png(binary.astype(np.float32))
            if self.save_npy:
                files[prefix + "alpha.npy"] = _npy_bytes(alpha)
            shown = resize_map(alpha, size)
            masks.append(shown)
            files[prefix + "overlay.png"] = png_bytes(overlay(display, [shown]))
            length = None if maps.unit_iterations is None else maps.unit_iterations[n]
            curves = {name: values[:length, n : n + 1] for name, values in maps.history.items()}  # its own steps
            if curves:
                files[prefix + "history.csv"] = history_csv(curves, [0])
            if full_frame:
                box, original_size = item.meta["crop_box"], item.original.shape[:2]
                full_alpha, full_mask = self.in_original_frame(alpha, own, box, original_size)
                full_alphas.append(full_alpha)
                files[prefix + "alpha_full.png"] = mask_png(full_alpha)
                files[prefix + "mask_full.png"] = mask_png(full_mask.astype(np.float32))
                files[prefix + "overlay_full.png"] = png_bytes(overlay(item.original, [full_alpha]))
            if self.rle:
                shown_mask = full_mask if full_frame else binary
                rles.append({"prompt": unit.prompt, "dir": prefix.rstrip("/") or ".", **coco_rle(shown_mask)})
            if maps.frames is not None:
                frames = maps.frames[:, n, 0].numpy()
                files[prefix + "timelapse.gif"] = gif_bytes([to_uint8_image(np.repeat(f[None], 3, 0)) for f in frames])
            entry = {
                "prompt": unit.prompt,
                "dir": prefix.rstrip("/") or ".",
                "final": {k: float(v[-1, 0]) for k, v in curves.items()},
            }
            if maps.stopped is not None:  # the steps this unit ran and why it stopped (schedule.stop)
                entry.update(iterations=length, stopped=maps.stopped[n])
            if not single:  # this prompt's colour in the combined overlay.png
                entry["overlay_colour"] = OVERLAY_COLOURS[(len(masks) - 1) % len(OVERLAY_COLOURS)].astype(int).tolist()
            if item.mask is not None:
                entry.update(self._scores(scored, own, item.mask))
            prompts.append(entry)
            for name, values in curves.items():
                history.setdefault(name, []).append(values[:, 0].tolist())
        if not single:
            files["overlay.png"] = png_bytes(overlay(display, masks))
            if full_frame:
                files["overlay_full.png"] = png_bytes(overlay(item.original, full_alphas))
        if self.rle:
            frame = "original" if full_frame else "working"
            files["masks.json"] = (json.dumps({"frame": frame, "masks": rles}, indent=1) + "\n").encode()
        times = timings(maps.seconds, maps.iterations, maps.alpha.shape[0], len(mine))
        rec = item_record(item, mine[0][1].seed, [u.prompt for _, u in mine], prompts, times, record)
        if single and "iou" in prompts[0]:
            rec["iou"] = prompts[0]["iou"]
        rec.update(timelapse_iterations=maps.frame_iterations, postprocess=self.postprocess.name)
        return ItemArtifacts(item.item_id, files, rec, preview=display, masks=masks, gt=item.mask, history=history)

    def _scores(self, scored: np.ndarray, own: np.ndarray | None, gt: np.ndarray) -> dict[str, Any]:
        """IoU at ``task.threshold`` of the (post-processed) soft map, or of a method's own binary mask, plus the
        soft map's scores at every threshold and the threshold sweep."""
        scores = score_alpha(scored, gt, self.thresholds, self.sweep_levels)
        if own is None:
            at = scores["thresholds"].index(self.threshold)
            main = {k: scores[k][at] for k in ("iou", "intersection", "union")}
        else:  # the method's mask, resized like a soft map: bilinear, then > 0.5
            fixed = score_alpha(own.astype(np.float32), gt, (0.5,))
            main = {k: fixed[k][0] for k in ("iou", "intersection", "union")}
        return {"threshold": self.threshold, **main, "scores": scores}


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32))
    return buffer.getvalue()
