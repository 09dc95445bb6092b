"""Renderers of the paper's tables and figures, run on a finished run or sweep directory.

Each is ``fn(directory, ...) -> list[Path]``, named by a ``render`` entry of a ``conf/experiment/`` preset (the
sweep callback calls it when the sweep ends) or run by hand: ``python experiments/render.py <dir>``.

- ``table``: Table 1 / 2 in the paper's format, ours beside the paper's numbers (``table.md``, ``table.csv``).
- ``fig_lambda_alpha``: the alpha of each item for each multiple of the recipe's lambda_alpha (Fig. 11).
- ``fig_variants``: one image, every variant side by side (Fig. 5).
- ``fig_timelapse``: the mask over the iterations (Fig. 4 and 14).
- ``fig_implicit_vs_pixel``: generated images and their pixel variance over the iterations, implicit (Fourier) vs
  pixel (raster) parametrization, with when each curve settles (appendix B.2, Fig. 12-13).
- ``fig_fg_bg_grid``: the foreground/background grid with its layers, and the grid over the iterations (appendix E,
  Fig. 17-18).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from PIL import Image, ImageSequence

from experiments.figures import Curve, Panel, Plot, panel_figure, panels_and_plots_figure
from experiments.tables import TABLES, job_row, table_markdown, table_rows
from peekaboo.config.build import build
from peekaboo.data.base import Item
from peekaboo.data.subset import select_items
from peekaboo.errors import DataError
from peekaboo.evaluation.convergence import describe_settling, settling_iteration
from peekaboo.evaluation.results import item_dir
from peekaboo.io.atomic import write_json, write_text
from peekaboo.io.images import overlay, resize_map, split_grid, to_uint8_image
from peekaboo.io.tables import csv_text, markdown_table
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
    labels = [job_row(job) or job.name for job in jobs]
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
        alphas, iterations = timelapse(job, item.item_id)
        chosen = evenly_spaced(len(alphas), max_frames)
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


def fig_implicit_vs_pixel(
    directory: Path, max_items: int = 2, max_frames: int = 6, tolerance: float = 0.05, hold: float = 0.1
) -> list[Path]:
    """Implicit vs pixel parametrization (appendix B.2): frames of each job for the first ``max_items`` prompts, one
    pixel-variance plot per job (every prompt's curve, and their mean), and when each curve settles
    (``peekaboo.evaluation.convergence.settling_iteration``): fig_implicit_vs_pixel.png, .md and .json."""
    jobs = completed(directory)
    kinds = {job.name: parametrization_kind(job) for job in jobs}
    labels = {job.name: f"{kinds[job.name]} ({job.config().param.name})" for job in jobs}
    jobs.sort(key=lambda job: (kinds[job.name] != "implicit", job.name))
    items = shared_items(jobs, sys.maxsize)
    rows: list[list[Panel]] = []
    for item in items[:max_items]:
        for job in jobs:
            frames, iterations = timelapse(job, item.item_id, "RGB")
            chosen = evenly_spaced(len(frames), max_frames)
            titles = [f"iteration {iterations[k]}" for k in chosen]
            titles[0] = f"{kinds[job.name]}: {item.prompts[0]}\n{titles[0]}"
            rows.append([Panel(frames[k], t) for k, t in zip(chosen, titles, strict=True)])
    plots, summary = [], []
    for job in jobs:
        curves = [history_column(job, item.item_id, "pixel_variance") for item in items]
        named = [(item.prompts[0], curve) for item, curve in zip(items, curves, strict=True)]
        if len(curves) > 1 and len({len(c) for c in curves}) == 1:
            named.append((f"mean of {len(curves)}", np.mean(curves, axis=0)))
        settled = [settling_iteration(curve, tolerance, hold) for _, curve in named]
        plots.append(
            Plot(
                [Curve(curve, name, at) for (name, curve), at in zip(named, settled, strict=True)],
                f"{labels[job.name]}: " + ("never settles" if settled[-1] is None else f"settles at {settled[-1]}"),
                "pixel variance",
            )
        )
        summary += [
            {
                "job": job.name,
                "parametrization": labels[job.name],
                "curve": name,
                "settles_at": at,
                "settling": describe_settling(at),
                "first_variance": float(curve[0]),
                "final_variance": float(curve[-1]),
                "iterations": len(curve),
            }
            for (name, curve), at in zip(named, settled, strict=True)
        ]
    out = Path(directory)
    figure = panels_and_plots_figure(
        rows, plots, out / "fig_implicit_vs_pixel.png", "Implicit vs pixel parametrization: images and pixel variance"
    )
    rule = (
        f"A curve settles at the first iteration after which it stays within {tolerance:.0%} of its final value, "
        f"for at least the last {hold:.0%} of the iterations; otherwise it never settles."
    )
    md = out / "fig_implicit_vs_pixel.md"
    write_text(
        md,
        "# Implicit vs pixel parametrization: pixel variance over the iterations (appendix B.2, Fig. 12-13)\n\n"
        "Pixel variance: the variance over pixels and channels of each generated image, every iteration "
        f"(items/<id>/history.csv). {rule}\n\n"
        + markdown_table(
            summary, ["job", "parametrization", "curve", "settling", "first_variance", "final_variance"], 4
        ),
    )
    js = out / "fig_implicit_vs_pixel.json"
    write_json(js, {"tolerance": tolerance, "hold": hold, "rule": rule, "curves": summary})
    return [figure, md, js]


def fig_fg_bg_grid(directory: Path, max_items: int = 1, max_frames: int = 6) -> list[Path]:
    """The foreground/background grid (appendix E, Fig. 17-18) of the first ``max_items`` grids: backgrounds along
    the top, each foreground and its alpha down the left, the F x B composites between (fig_fg_bg_grid.png); and
    each grid at ``max_frames`` iterations (fig_fg_bg_grid_timelapse.png)."""
    job = completed(directory)[0]
    rows: list[list[Panel]] = []
    strip: list[list[Panel]] = []
    for item in shared_items([job], max_items):
        directory_of = item_dir(job.directory, item.item_id)
        foregrounds, backgrounds = item.meta["foregrounds"], item.meta["backgrounds"]
        n_fg, n_bg = len(foregrounds), len(backgrounds)
        cells = split_grid(read_image(directory_of / "grid.png"), n_fg, n_bg)
        fg = split_grid(read_image(directory_of / "foregrounds.png"), 1, n_fg)[0]
        alpha = split_grid(read_image(directory_of / "alphas.png"), 1, n_fg)[0]
        bg = split_grid(read_image(directory_of / "backgrounds.png"), 1, n_bg)[0]
        rows.append([None, None, *(Panel(b, f"bg: {p}") for b, p in zip(bg, backgrounds, strict=True))])
        rows += [
            [Panel(fg[f], f"fg: {foregrounds[f]}"), Panel(alpha[f], "alpha"), *(Panel(c) for c in cells[f])]
            for f in range(n_fg)
        ]
        frames, iterations = timelapse(job, item.item_id, "RGB")
        chosen = evenly_spaced(len(frames), max_frames)
        strip.append([Panel(frames[k], f"{item.item_id}, iteration {iterations[k]}") for k in chosen])
    out = Path(directory)
    title = "Foregrounds, alphas and backgrounds learned together (rows: foregrounds; columns: backgrounds)"
    figure = panel_figure(rows, out / "fig_fg_bg_grid.png", title)
    frames_figure = panel_figure(strip, out / "fig_fg_bg_grid_timelapse.png", "The grid over the iterations", cell=2.4)
    return [figure, frames_figure]


def parametrization_kind(job: Job) -> str:
    """'implicit' for a Fourier field, 'pixel' for a raster one."""
    return "implicit" if job.config().param.field._target_ == "peekaboo.params.fields.FourierField" else "pixel"


def evenly_spaced(count: int, most: int) -> list[int]:
    """Up to ``most`` indices spread evenly over ``range(count)``, first and last included."""
    return sorted({int(round(k)) for k in np.linspace(0, count - 1, min(most, count))})


def timelapse(job: Job, item_id: str, mode: str = "L") -> tuple[list[np.ndarray], list[int]]:
    """The frames of an item's (first prompt's) timelapse.gif, as float [0, 1] ("L") or uint8 RGB, and their
    iterations."""
    result = job.result(item_id)
    gif = item_dir(job.directory, item_id) / result["results"][0]["dir"] / "timelapse.gif"
    if not gif.is_file():
        raise DataError(f"{gif} does not exist: run with schedule.timelapse_every > 0 for a timelapse")
    with Image.open(gif) as frames:
        images = [np.asarray(f.convert(mode)) for f in ImageSequence.Iterator(frames)]
    if mode == "L":
        images = [image.astype(np.float32) / 255 for image in images]
    return images, result.get("timelapse_iterations") or list(range(len(images)))


def history_column(job: Job, item_id: str, name: str) -> np.ndarray:
    """One curve of an item's (first prompt's) history.csv, one value per iteration."""
    result = job.result(item_id)
    path = item_dir(job.directory, item_id) / result["results"][0]["dir"] / "history.csv"
    try:
        with path.open() as handle:
            values = [float(row[name]) for row in csv.DictReader(handle)]
    except FileNotFoundError as err:
        raise DataError(f"{path} does not exist: rerun this job (history.csv is written with every item)") from err
    except KeyError as err:
        raise DataError(f"{path} has no {name!r} column: the run's task does not record it") from err
    return np.asarray(values)


def read_image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


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
