"""What the web demo does, as plain functions: read the form, run the Python API in a worker thread while
streaming its progress, and write the downloads. Nothing here imports gradio, so tests drive it directly."""

from __future__ import annotations

import functools
import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image
from scipy.ndimage import binary_erosion

from peekaboo.data.configs import Crop
from peekaboo.data.transforms import crop_box
from peekaboo.errors import DataError, ModelLoadError, PeekabooError
from peekaboo.io.atomic import write_bytes, write_text
from peekaboo.io.images import OVERLAY_COLOURS, png_bytes
from peekaboo.toy.scenes import make_scene

if TYPE_CHECKING:
    from peekaboo import Peekaboo
    from peekaboo.api import Progress as ProgressFn  # (iterations done, total, alphas or None) -> None

log = logging.getLogger(__name__)
T = TypeVar("T")
_ONE_JOB = threading.Lock()

SD_FOLDER = "sd_folder"
# (label shown in the page, value): a preset name of peekaboo.Peekaboo, or SD_FOLDER for a local weights folder.
MODEL_CHOICES: tuple[tuple[str, str], ...] = (
    ("Toy world (analytic prior, runs on a CPU)", "toy"),
    ("Trained toy prior (toy_sd)", "toy_sd"),
    ("Stable Diffusion (local weights folder)", SD_FOLDER),
)
PARAMETRIZATIONS: tuple[str, ...] = ("raster", "raster_bilateral", "fourier", "fourier_bilateral")
TIMELAPSE_FRAMES = 25  # frames streamed to the page per run, whatever the iteration count
DISPLAY_HEIGHT = 320  # height of the pictures shown in the page, in pixels
DIM = 0.3  # brightness left where a mask is 0
GAP = 4  # white pixels between tiles


class Cancelled(Exception):
    """Raised inside a job's progress callback once the user pressed Stop or the page stopped listening."""


@dataclass(frozen=True)
class Progress:
    """One streamed update: the iteration reached and, at timelapse frames, the current alphas (P, h, w)."""

    iteration: int
    total: int
    alphas: np.ndarray | None



# --- reading the form ---------------------------------------------------------------------------------------


def parse_prompts(text: str | None) -> list[str]:
    """One prompt per comma- or newline-separated entry, blanks dropped; at least one is required."""
    prompts = [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]
    if not prompts:
        raise DataError("no prompt: type what to segment, e.g. 'red circle' (several: separate them by commas)")
    return prompts


def require_image(image: np.ndarray | None) -> np.ndarray:
    """The uploaded (H, W, 3) uint8 image; a clear error when the upload box is empty."""
    if image is None:
        raise DataError("no image: upload an image (or pick an example below the upload box), then press Segment")
    return np.asarray(image)


def resolve_model(choice: str, folder: str | None) -> str:
    """The ``model`` argument of Peekaboo for a model choice: a preset name or the typed weights folder."""
    if choice != SD_FOLDER:
        return choice
    folder = (folder or "").strip()
    if not folder:
        raise ModelLoadError(
            "no Stable Diffusion folder: type the path of a local diffusers-format model (the folder holding "
            "model_index.json, e.g. a downloaded runwayml/stable-diffusion-v1-5) into 'SD weights folder'"
        )
    return str(Path(folder).expanduser())


def schedule_overrides(iterations: float | int) -> dict[str, int]:
    """Iteration count and a timelapse spacing that streams about TIMELAPSE_FRAMES frames."""
    count = int(iterations)
    if count < 1:
        raise DataError(f"iterations must be at least 1, got {iterations}")
    return {"schedule.iterations": count, "schedule.timelapse_every": max(1, count // TIMELAPSE_FRAMES)}


# --- running the API --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def peekaboo_for(model: str) -> Peekaboo:
    """One Peekaboo per model (preset or folder), built on first use: loading SD weights takes a while.

    A failed build raises and is not cached, so fixing the folder and pressing again retries. Imported here so
    that the page is up before torch and the model code are loaded.
    """
    from peekaboo import Peekaboo

    return Peekaboo(model=model)


def warm_up(model: str = "toy") -> None:
    """Build ``model``'s Peekaboo ahead of the first request (imports torch and the engine, composes the config),
    so that the first press of a button does not wait for it; a failure is only logged, the request reports it."""
    try:
        with _ONE_JOB:
            peekaboo_for(model)
    except Exception as error:
        log.warning("could not prepare model %r: %s", model, error)


def run_in_thread(job: Callable[[ProgressFn], T], stop: threading.Event | None = None) -> Generator[Progress, None, T]:
    """Run ``job(progress)`` in a worker thread, yield its progress, return its result (or raise its error).

    Reports that pile up while the page renders are merged into one (the latest iteration and alphas), so a
    slow browser never falls behind. The job raises Cancelled at its next report once ``stop`` is set (the
    Stop button) or the generator is closed (the page went away), instead of running on unseen. Jobs run one at
    a time: a cancelled one may still be finishing its iteration, on the same cached models, as the next starts.
    """
    reports: queue.Queue[Progress | None] = queue.Queue()
    outcome: dict[str, Any] = {}
    stop = stop or threading.Event()

    def report(iteration: int, total: int, alphas: np.ndarray | None) -> None:
        if stop.is_set():
            raise Cancelled("stopped")
        reports.put(Progress(int(iteration), int(total), None if alphas is None else np.array(alphas, np.float32)))

    def work() -> None:
        try:
            with _ONE_JOB:
                outcome["result"] = job(report)
        except BaseException as error:  # handed to the consumer thread, which re-raises it
            outcome["error"] = error
        finally:
            reports.put(None)

    worker = threading.Thread(target=work, name="peekaboo-app-job", daemon=True)
    worker.start()
    try:
        finished = False
        while not finished:
            pending = [reports.get()]
            while not reports.empty():
                pending.append(reports.get())
            finished = pending[-1] is None
            updates = [p for p in pending if p is not None]
            if updates:
                frames = [p.alphas for p in updates if p.alphas is not None]
                yield Progress(updates[-1].iteration, updates[-1].total, frames[-1] if frames else None)
    finally:
        stop.set()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def segment(
    image: np.ndarray | None,
    prompts_text: str | None,
    model_choice: str,
    folder: str | None = None,
    param: str = "raster_bilateral",
    iterations: int = 100,
    stop: threading.Event | None = None,
) -> Generator[Progress, None, Any]:
    """Segment ``image`` for each prompt with Peekaboo, yielding progress; returns the SegmentationResult.
    Setting ``stop`` ends the run with Cancelled at its next iteration."""
    image = require_image(image)
    prompts = parse_prompts(prompts_text)
    model = resolve_model(model_choice, folder)
    if param not in PARAMETRIZATIONS:
        raise DataError(f"unknown parametrization {param!r}; pick one of {', '.join(PARAMETRIZATIONS)}")
    overrides = {"param": param, **schedule_overrides(iterations)}

    def job(report: ProgressFn) -> Any:
        return peekaboo_for(model).segment(image, prompts, progress=report, **overrides)

    return (yield from run_in_thread(job, stop))


def generate_rgba(
    prompt_text: str | None,
    model_choice: str,
    folder: str | None = None,
    iterations: int = 100,
    stop: threading.Event | None = None,
) -> Generator[Progress, None, Any]:
    """Generate one RGBA image for the prompt (task=rgba), yielding progress; returns the RGBAResult.
    Setting ``stop`` ends the run with Cancelled at its next iteration."""
    prompt = (prompt_text or "").strip()
    if not prompt:
        raise DataError("no prompt: type what to generate, e.g. 'red circle'")
    model = resolve_model(model_choice, folder)
    overrides = schedule_overrides(iterations)

    def job(report: ProgressFn) -> Any:
        return peekaboo_for(model).generate_rgba(prompt, progress=report, **overrides)

    return (yield from run_in_thread(job, stop))


def describe_error(error: BaseException) -> str:
    """The message shown in the page: a PeekabooError's own one-liner; anything else named, its traceback logged."""
    if isinstance(error, PeekabooError):
        return str(error)
    log.error("unexpected error in the web demo", exc_info=error)
    return f"unexpected {type(error).__name__}: {error} (the server log has the details)"


# --- showing and saving results ---------------------------------------------------------------------------------


def spotlight(image: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """One tile per mask (P, h, w) in [0, 1], side by side and DISPLAY_HEIGHT high: the image dimmed where the
    mask is low and outlined in the prompt's colour where it crosses 0.5. Dimming, unlike a colour tint, stays
    visible whatever the object's colour (a red tint on a red circle shows nothing)."""
    height, width = alphas.shape[1:]
    size = (max(1, round(width * DISPLAY_HEIGHT / height)), DISPLAY_HEIGHT)
    base = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize(size, Image.BILINEAR), np.float32)
    tiles = []
    for k, alpha in enumerate(alphas):
        weight = np.asarray(Image.fromarray(np.asarray(alpha, np.float32)).resize(size, Image.BILINEAR)).clip(0, 1)
        tile = base * (DIM + (1 - DIM) * weight[..., None])
        inside = weight >= 0.5
        tile[inside & ~binary_erosion(inside, iterations=2)] = OVERLAY_COLOURS[k % len(OVERLAY_COLOURS)]
        tiles.append(tile)
    gap = np.full((DISPLAY_HEIGHT, GAP, 3), 255.0, np.float32)
    row = [part for tile in tiles for part in (tile, gap)][:-1]
    return (np.concatenate(row, axis=1) + 0.5).clip(0, 255).astype(np.uint8)


def preview(image: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """``spotlight`` of the working-resolution alphas (P, h, w) of a running segmentation on the region of the
    image they cover (the API's default centre crop)."""
    top, left, bottom, right = crop_box(*np.shape(image)[:2], Crop.center)
    return spotlight(np.asarray(image)[top:bottom, left:right], alphas)


def alpha_preview(alphas: np.ndarray) -> np.ndarray:
    """An RGBA generation's current alpha (1, h, w) as a grey image DISPLAY_HEIGHT high."""
    grey = (np.clip(alphas[0], 0, 1) * 255 + 0.5).astype(np.uint8)
    height, width = grey.shape
    return np.asarray(Image.fromarray(grey).resize((round(width * DISPLAY_HEIGHT / height), DISPLAY_HEIGHT)))


def enlarged(image: np.ndarray) -> np.ndarray:
    """``image`` scaled up by a whole factor (nearest, so pixels stay crisp) to at least DISPLAY_HEIGHT high:
    the toy world's 32x32 results would otherwise show as a thumbnail."""
    factor = -(-DISPLAY_HEIGHT // image.shape[0])
    return image if factor <= 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def slug(prompt: str) -> str:
    """A file-name-safe form of a prompt: 'Red circle!' -> 'red_circle'."""
    return re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:40] or "prompt"


def write_segmentation(result: Any, directory: str | Path) -> list[Path]:
    """The downloads of a segmentation: one mask PNG and one RGBA cut-out PNG per prompt, and all masks as
    COCO RLE in masks_rle.json ([{"prompt", "segmentation": {"size", "counts"}}], pycocotools-decodable)."""
    directory = Path(directory)
    paths = []
    for k, prompt in enumerate(result.prompts):
        stem = f"{k}_{slug(prompt)}"
        paths.append(directory / f"mask_{stem}.png")
        write_bytes(paths[-1], png_bytes(result.masks[k].astype(np.uint8) * 255))
        paths.append(directory / f"cutout_{stem}.png")
        write_bytes(paths[-1], png_bytes(result.rgba(k)))
    records = [
        {"prompt": prompt, "segmentation": {"size": list(rle["size"]), "counts": _text(rle["counts"])}}
        for prompt, rle in zip(result.prompts, result.rle(), strict=True)
    ]
    paths.append(directory / "masks_rle.json")
    write_text(paths[-1], json.dumps(records, indent=2) + "\n")
    return paths


def write_rgba(result: Any, directory: str | Path) -> Path:
    """The download of an RGBA generation: rgba_<prompt>.png."""
    path = Path(directory) / f"rgba_{slug(result.prompt)}.png"
    write_bytes(path, png_bytes(result.rgba))
    return path


def _text(counts: bytes | str) -> str:
    return counts.decode("ascii") if isinstance(counts, bytes) else counts


def toy_example(seed: int = 0, prompt: str = "red circle", scale: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A toy-world scene as an uploadable (H, W, 3) uint8 image and its target's (H, W) bool mask, both
    enlarged ``scale`` times (nearest) so that the page shows it at a viewable size."""
    scene = make_scene(seed, target=prompt)
    image = ((scene.image.transpose(1, 2, 0) + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
    enlarge = np.ones((scale, scale, 1), np.uint8)
    return np.kron(image, enlarge), np.kron(scene.mask, enlarge[..., 0]).astype(bool)
