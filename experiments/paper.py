"""Renderers of the paper's tables and figures, run on a finished run or sweep directory.

Each is ``fn(directory, ...) -> list[Path]``, named by a ``render`` entry of a ``conf/experiment/`` preset (the
sweep callback calls it when the sweep ends) or run by hand: ``python experiments/render.py <dir>``.

- ``table``: Table 1 / 2 in the paper's format, ours beside the paper's numbers (``table.md``, ``table.csv``).
- ``fig_lambda_alpha``: the alpha of each item for each multiple of the recipe's lambda_alpha (Fig. 11).
- ``fig_variants``: one image, every variant side by side (Fig. 5).
- ``fig_timelapse``: the mask over the iterations (Fig. 4 and 14).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from PIL import Image, ImageSequence

from peekaboo.config.build import build
from peekaboo.data.base import Item
from peekaboo.data.subset import select_items
from peekaboo.errors import DataError
from peekaboo.figures import Panel, panel_figure
from peekaboo.io.atomic import write_text
from peekaboo.io.images import overlay, resize_map, to_uint8_image
from peekaboo.io.tables import csv_text
from peekaboo.paper import TABLES, job_variant, table_markdown, table_rows
from peekaboo.results import item_dir
from peekaboo.sweep import Job, find_jobs


def table(directory: Path, name: str) -> list[Path]:
    """``table.md`` and ``table.csv`` for paper table ``name`` (``refcoco``: Table 1, ``voc_c``: Table 2)."""
    if name not in TABLES:
        raise DataError(f"render.table.name: unknown table {name!r}; one of {', '.join(TABLES)}")
    paper, jobs = TABLES[name], find_jobs(directory)
    rows = table_rows(paper, jobs)
    ran = [j for j in jobs if j.metrics] or jobs
    data = {str(j.choices.get("data")) for j in ran}
    context = (
        f"Ours: {len(ran)} job(s) in `{directory}` (data={', '.join(sorted(data))}, "
        f"model={', '.join(sorted({str(j.choices.get('model')) for j in ran}))})."
    )
    if not data <= set(paper.datasets):
        context += (
            f" The paper's numbers are for data={'/'.join(paper.datasets)} with Stable Diffusion 1.4: a run on "
            "other data checks the pipeline, it is not comparable."
        )
    md, csv_path = Path(directory) / "table.md", Path(directory) / "table.csv"
    write_text(md, table_markdown(paper, rows, context))
    write_text(csv_path, csv_text(rows))
    return [md, csv_path]


def fig_lambda_alpha(directory: Path, max_items: int = 4) -> list[Path]:
    """Rows: items; columns: image, ground truth, the alpha at each ``figure.lambda_scale`` multiple of lambda."""
    jobs = completed(directory)
    configs = {job.name: job.config() for job in jobs}
    scale = {job.name: float(OmegaConf.select(configs[job.name], "figure.lambda_scale", default=1.0)) for job in jobs}
    jobs.sort(key=lambda job: scale[job.name])
    labels = [f"{scale[j.name]:g}x (lambda {float(configs[j.name].loss.lambda_alpha):g})" for j in jobs]
    rows = [
        [*item_panels(item), *(alpha_panel(job, item, label) for job, label in zip(jobs, labels, strict=True))]
        for item in shared_items(jobs, max_items)
    ]
    title = "Masks vs the alpha penalty (multiples of the recipe's lambda_alpha)"
    return [panel_figure(rows, Path(directory) / "fig_lambda_alpha.png", title)]


def fig_variants(directory: Path, max_items: int = 1) -> list[Path]:
    """Per item two rows: image and each variant's overlay; ground truth and each variant's alpha."""
    jobs = completed(directory)
    labels = [job_variant(job) or job.name for job in jobs]
    rows = []
    for item in shared_items(jobs, max_items):
        image, truth = item_panels(item)
        alphas = [alpha_panel(job, item, label) for job, label in zip(jobs, labels, strict=True)]
        rows.append(
            [
                image,
                *(Panel(overlay(image.image, [resize_map(a.image, image.image.shape[:2])]), a.title) for a in alphas),
            ]
        )
        rows.append([truth, *(Panel(a.image, "alpha") for a in alphas)])
    return [panel_figure(rows, Path(directory) / "fig_variants.png", "Peekaboo variants on the same image")]


def fig_timelapse(directory: Path, max_items: int = 2, max_frames: int = 8) -> list[Path]:
    """Per item two rows over the iterations: the mask over the image, and the alpha (from timelapse.gif)."""
    job = completed(directory)[0]
    rows = []
    for item in shared_items([job], max_items):
        result = job.result(item.item_id)
        entry = result["results"][0]
        gif = item_dir(job.directory, item.item_id) / entry["dir"] / "timelapse.gif"
        if not gif.is_file():
            raise DataError(f"{gif} does not exist: run with schedule.timelapse_every > 0 for a timelapse")
        with Image.open(gif) as frames:
            alphas = [np.asarray(f.convert("L"), np.float32) / 255 for f in ImageSequence.Iterator(frames)]
        iterations = result.get("timelapse_iterations") or list(range(len(alphas)))
        chosen = sorted({int(round(k)) for k in np.linspace(0, len(alphas) - 1, min(max_frames, len(alphas)))})
        image, _ = item_panels(item)
        shape = image.image.shape[:2]
        rows.append(
            [
                image,
                *(
                    Panel(overlay(image.image, [resize_map(alphas[k], shape)]), f"iteration {iterations[k]}")
                    for k in chosen
                ),
            ]
        )
        rows.append([None, *(Panel(alphas[k], "alpha") for k in chosen)])
    return [panel_figure(rows, Path(directory) / "fig_timelapse.png", "The mask over the iterations")]


def completed(directory: Path) -> list[Job]:
    jobs = [job for job in find_jobs(directory) if job.metrics is not None]
    if not jobs:
        raise DataError(f"{directory}: no finished run (no metrics.json) to draw")
    return jobs


def shared_items(jobs: list[Job], max_items: int) -> list[Item]:
    """The first ``max_items`` items (in dataset order) that every job completed, loaded from the first job's data."""
    cfg = jobs[0].config()
    dataset = select_items(build(cfg.data), OmegaConf.to_container(cfg).get("subset"))
    items = []
    for index, item_id in enumerate(dataset.item_ids):
        if len(items) >= max_items:
            break
        if all((job.result(item_id) or {}).get("status") == "complete" for job in jobs):
            items.append(dataset[index])
    if not items:
        raise DataError(f"{jobs[0].directory.parent}: no item was completed by every job")
    return items


def item_panels(item: Item) -> tuple[Panel, Panel]:
    """The image (prompt as title) and the ground truth (void grey)."""
    image = item.display if item.display is not None else to_uint8_image(item.image)
    truth = None if item.mask is None else np.where(item.mask == 255, 0.5, item.mask).astype(np.float32)
    return Panel(image, f"{item.prompts[0]}"), Panel(truth, "ground truth")


def alpha_panel(job: Job, item: Item, label: str) -> Panel:
    """The job's soft alpha of ``item`` (first prompt) titled with ``label`` and its IoU."""
    entry: dict[str, Any] = job.result(item.item_id)["results"][0]
    alpha = np.asarray(Image.open(item_dir(job.directory, item.item_id) / entry["dir"] / "alpha.png"), np.float32)
    iou = f"\nIoU {entry['iou']:.2f}" if "iou" in entry else ""
    return Panel(alpha / 255, f"{label}{iou}")
