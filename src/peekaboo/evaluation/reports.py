"""Human-facing summaries of a run: the console table and the contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from peekaboo.evaluation.results import item_dir
from peekaboo.io.atomic import write_bytes
from peekaboo.io.images import fit, grid, png_bytes, to_uint8_image


def format_table(records: list[dict[str, Any]], metrics: dict[str, Any], max_rows: int) -> str:
    """Per-item (item, prompt, IoU) rows when there are few, then the dataset-level numbers."""
    lines = []
    rows = [(r["item_id"], e["prompt"], e.get("iou")) for r in records for e in r.get("results", [])]
    if rows and len(rows) <= max_rows:
        width = max(len(r[0]) for r in rows)
        pwidth = max(len(r[1]) for r in rows)
        lines.append(f"{'item'.ljust(width)}  {'prompt'.ljust(pwidth)}  IoU")
        lines += [f"{i.ljust(width)}  {p.ljust(pwidth)}  {'-' if v is None else f'{v:.3f}'}" for i, p, v in rows]
    lines.append(
        format_metrics({**{k: v for k, v in metrics.items() if not isinstance(v, dict)}, **metrics.get("timings", {})})
    )
    best = metrics.get("best_threshold")
    if best:
        shown = {k: v for k, v in best.items() if k not in ("note", "levels", "n")}
        lines.append(f"best threshold, tuned on the test set: {format_metrics(shown)}")
    return "\n".join(lines)


def format_metrics(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def contact_sheet(dataset, output_dir: Path, item_ids: list[str], max_rows: int, tile: int = 128) -> Path | None:
    """image | ground truth | alpha | overlay, one row per item with ground truth (first ``max_rows``)."""
    rows = []
    for index, item_id in enumerate(item_ids):
        if len(rows) >= max_rows:
            break
        directory = item_dir(output_dir, item_id)
        if not (directory / "alpha.png").is_file():
            continue
        item = dataset[index]
        if item.mask is None:
            continue
        image = item.display if item.display is not None else to_uint8_image(item.image)
        gt = np.where(item.mask == 255, 128, item.mask * 255).astype(np.uint8)
        alpha = np.asarray(Image.open(directory / "alpha.png").convert("L"))
        overlay = np.asarray(Image.open(directory / "overlay.png").convert("RGB"))
        rows.append(
            [fit(t if t.ndim == 3 else np.repeat(t[..., None], 3, 2), tile) for t in (image, gt, alpha, overlay)]
        )
    if not rows:
        return None
    path = output_dir / "contact_sheet.png"
    write_bytes(path, png_bytes(grid(rows)))
    return path
