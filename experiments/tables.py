"""The paper's Tables 1 and 2 as data, and our numbers formatted beside them.

Rows are matched to jobs by the job's ``row`` choice (``conf/row/<name>.yaml``), or its ``param`` choice
when it has none. Rows the sweep did not run are listed with the paper's numbers only; jobs that match no row
are appended as extra rows. The paper reports the best threshold of a sweep, so ours is given twice: at the fixed
threshold and at the best threshold (tuned on the test set, like the paper's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peekaboo.evaluation.metrics import PRECISION_LEVELS
from peekaboo.sweep import Job

COLUMNS = (*(f"Prec@{p}" for p in PRECISION_LEVELS), "mIoU")


@dataclass(frozen=True)
class PaperRow:
    kind: str  # "Baselines" or "Peekaboo Variants (ours)", as printed
    method: str  # the paper's name
    row: str  # our row (conf/row/) or param name that reproduces it
    numbers: tuple[float, float, float, float, float]  # Prec@0.2, 0.4, 0.6, 0.8, mIoU


@dataclass(frozen=True)
class PaperTable:
    number: int
    title: str
    datasets: tuple[str, ...]  # the data presets the paper's numbers are for
    rows: tuple[PaperRow, ...]


BASE, OURS = "Baselines", "Peekaboo Variants (ours)"
TABLES = {
    "refcoco": PaperTable(
        1,
        "Referring Segmentation Evaluation (RefCOCO)",
        ("refcoco", "refcoco_c"),
        (
            PaperRow(BASE, "Random", "random", (0.141, 0.022, 0.003, 0.000, 0.102)),
            PaperRow(BASE, "GroupViT", "groupvit", (0.212, 0.075, 0.020, 0.002, 0.112)),
            PaperRow(BASE, "LSeg", "lseg", (0.512, 0.212, 0.051, 0.008, 0.235)),
            PaperRow(OURS, "Depth Bilateral", "depth_bilateral", (0.359, 0.135, 0.037, 0.003, 0.204)),
            PaperRow(OURS, "RGB Bilateral", "raster_bilateral", (0.318, 0.099, 0.018, 0.002, 0.163)),
        ),
    ),
    "voc_c": PaperTable(
        2,
        "VOC-C Semantic Segmentation Evaluation",
        ("voc_c",),
        (
            PaperRow(BASE, "Random", "random", (0.670, 0.198, 0.032, 0.012, 0.281)),
            PaperRow(BASE, "Clippy", "clippy", (0.757, 0.459, 0.263, 0.049, 0.539)),
            PaperRow(BASE, "GroupViT", "groupvit", (0.862, 0.778, 0.602, 0.205, 0.578)),
            PaperRow(BASE, "LSeg", "lseg", (0.952, 0.897, 0.758, 0.311, 0.678)),
            PaperRow(OURS, "Raster", "raster", (0.756, 0.323, 0.103, 0.012, 0.340)),
            PaperRow(OURS, "CLIP", "clip", (0.918, 0.488, 0.093, 0.023, 0.430)),
            PaperRow(OURS, "Fourier", "fourier", (0.862, 0.598, 0.231, 0.084, 0.454)),
            PaperRow(OURS, "Bilateral Fourier", "fourier_bilateral", (0.845, 0.608, 0.281, 0.123, 0.470)),
            PaperRow(OURS, "Depth Bilateral", "depth_bilateral", (0.929, 0.707, 0.455, 0.187, 0.551)),
            PaperRow(OURS, "RGB Bilateral", "raster_bilateral", (0.892, 0.709, 0.331, 0.130, 0.520)),
        ),
    ),
}


# Rows this framework adds to both tables: the training-free attention baselines (conf/row/<name>.yaml).
EXTRA = "Baselines (not in the paper)"
EXTRA_ROWS = {
    "attn_gmm": "Attention + GMM (concept distillation)",
    "daam": "DAAM heat map",
}


def job_row(job: Job) -> str | None:
    return job.choices.get("row") or job.choices.get("param")


def short(value: float | None) -> str:
    """The paper's style: three decimals without the leading zero; '-' when absent."""
    if value is None:
        return "-"
    text = f"{value:.3f}"
    return text[1:] if text.startswith("0.") else text


def table_rows(table: PaperTable, jobs: list[Job]) -> list[dict[str, Any]]:
    """One row per paper row (with every job that ran it) and per unmatched job: ours (fixed and best threshold)
    and the paper's numbers."""
    by_row: dict[str | None, list[Job]] = {}
    for job in jobs:
        by_row.setdefault(job_row(job), []).append(job)
    known = {row.row for row in table.rows}
    entries = [(row, job) for row in table.rows for job in by_row.get(row.row) or [None]]
    entries += [(None, job) for job in jobs if job_row(job) not in known]
    rows = []
    for paper, job in entries:
        metrics = (job.metrics or {}) if job else {}
        best = metrics.get("best_threshold") or {}
        row: dict[str, Any] = {
            "type": paper.kind if paper else EXTRA if job_row(job) in EXTRA_ROWS else "Not in the paper",
            "method": paper.method if paper else EXTRA_ROWS.get(job_row(job), job_row(job) or job.name),
            "row": paper.row if paper else job_row(job),
            "job": job.name if job else None,
            "status": job.status if job else "not run",
            "n": metrics.get("n"),
            "threshold": metrics.get("threshold"),
            "best_threshold": best.get("threshold"),
        }
        for k, column in enumerate(COLUMNS):
            row[f"ours {column}"] = metrics.get(column)
            row[f"ours best-thr {column}"] = best.get(column)
            row[f"paper {column}"] = paper.numbers[k] if paper else None
        rows.append(row)
    return rows


def table_markdown(table: PaperTable, rows: list[dict[str, Any]], context: str) -> str:
    """Two tables in the paper's format, each cell 'ours (paper)': at the fixed threshold, at the best one."""
    lines = [f"# Table {table.number}: {table.title}", "", context, ""]
    for label, prefix in (
        ("Ours at the fixed threshold (task.threshold)", "ours "),
        ("Ours at the best threshold of the sweep: tuned on the test set, as the paper's numbers", "ours best-thr "),
    ):
        lines += [f"## {label}", "", "| Type | Method | " + " | ".join(COLUMNS) + " | n |", "|---|---|" + "---|" * 6]
        for row in rows:
            cells = [f"{short(row[prefix + c])} ({short(row['paper ' + c])})" for c in COLUMNS]
            lines.append(f"| {row['type']} | {row['method']} | " + " | ".join(cells) + f" | {row['n'] or '-'} |")
        lines.append("")
    lines.append("Cells: ours (paper). '-': not run here or not reported by the paper.")
    return "\n".join(lines) + "\n"
