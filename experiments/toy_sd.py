"""Renderer of ``experiment=toy_sd_table``: one row per job of the sweep (Peekaboo variants and the attention
baselines on the same toy scenes and prior), ``table.md`` / ``table.csv``, and one contact sheet per row.

Peekaboo, DAAM and attn_gmm are scored by the target's IoU (mIoU over scenes); DiffSeg, which has no prompt, by the
Hungarian mIoU of its segments against the scene's objects (background, target, distractors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from peekaboo.config.build import build
from peekaboo.evaluation.results import item_dir
from peekaboo.io.atomic import write_bytes, write_text
from peekaboo.io.images import fit, grid, png_bytes, to_uint8_image
from peekaboo.io.tables import csv_text, markdown_table
from peekaboo.sweep import Job, find_jobs

COLUMNS = ("row", "metric", "score", "Prec@0.6", "n", "seconds_per_item", "status", "contact_sheet")


def row_name(job: Job) -> str:
    """The job's row (conf/row/), or its method (baselines) / parametrization, with the cost knobs it overrides."""
    name = job.choices.get("row") or job.choices.get("param")
    knobs = [o for o in job.overrides if o.startswith("loss.sds.")]
    return " ".join([str(name), *knobs])


def score(job: Job) -> tuple[str, float | None, float | None]:
    """(metric name, value, fraction of scenes with IoU > 0.6) of a job."""
    metrics = job.metrics or {}
    if "mIoU" in metrics:
        return "mIoU", metrics["mIoU"], metrics.get("Prec@0.6")
    if "hungarian_mIoU" in metrics:
        return "Hungarian mIoU", metrics["hungarian_mIoU"], None
    return "-", None, None


def contact_sheet(job: Job, directory: Path, name: str, tile: int = 96) -> Path | None:
    """image | ground truth | the job's overlay (mask or segments), one row per scene."""
    dataset = build(job.config().data)
    rows = []
    for index, item_id in enumerate(dataset.item_ids):
        overlay_png = item_dir(job.directory, item_id) / "overlay.png"
        if not overlay_png.is_file():
            continue
        item = dataset[index]
        image = to_uint8_image(item.image)
        gt = np.repeat((item.mask * 255).astype(np.uint8)[..., None], 3, 2)
        shown = np.asarray(Image.open(overlay_png).convert("RGB"))
        rows.append([fit(t, tile) for t in (image, gt, shown)])
    if not rows:
        return None
    path = directory / f"contact_sheet_{name}.png"
    write_bytes(path, png_bytes(grid(rows)))
    return path


def table(directory: Path) -> list[Path]:
    directory = Path(directory)
    rows: list[dict[str, Any]] = []
    for job in find_jobs(directory):
        name = row_name(job)
        metric, value, precision = score(job)
        sheet = contact_sheet(job, directory, name.replace(" ", "_").replace("=", "-").replace(".", "_"))
        rows.append(
            {
                "row": name,
                "metric": metric,
                "score": value,
                "Prec@0.6": precision,
                "n": (job.metrics or {}).get("n", (job.metrics or {}).get("hungarian_n")),
                "seconds_per_item": ((job.metrics or {}).get("timings") or {}).get("seconds_per_item"),
                "status": job.status,
                "contact_sheet": sheet.name if sheet else None,
            }
        )
    md, csv_path = directory / "table.md", directory / "table.csv"
    title = "# Peekaboo and the attention baselines through the toy SD\n\n"
    write_text(md, title + markdown_table(rows, list(COLUMNS)))
    write_text(csv_path, csv_text(rows, list(COLUMNS)))
    return [md, csv_path]
