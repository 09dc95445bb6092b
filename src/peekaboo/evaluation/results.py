"""Per-item results on disk: completeness (for resuming), and the run-level aggregation.

An item is complete when its ``result.json`` parses, says ``"status": "complete"``, was produced by the same
result-affecting configuration (``config_hash``) from the same inputs (``input_digest``: image and mask bytes,
prompts, index row; see ``peekaboo.data.digest``) and every file it lists exists with the size it was written
with. ``result.json`` is written last and atomically, so a crash at any point leaves the item incomplete, and it
is redone; so is an item whose inputs changed or whose files were truncated or removed since (``stale_reason``
says which, and the data module logs it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from peekaboo.data.base import check_item_id
from peekaboo.evaluation.metrics import TUNED_NOTE, best_threshold, summarize, summarize_hungarian
from peekaboo.io.atomic import remove_stale_temporaries, write_bytes, write_json, write_text
from peekaboo.io.tables import csv_text

RESULT = "result.json"
NOT_DONE, ANOTHER_CONFIG = "not done", "written with another configuration"


def item_dir(output_dir: str | Path, item_id: str) -> Path:
    """``<output_dir>/items/<item_id>``; an id that is not one plain name is refused (nothing escapes ``items/``)."""
    return Path(output_dir) / "items" / check_item_id(item_id, "item id")


def read_result(directory: Path) -> dict[str, Any] | None:
    """The item's result record; None when absent, unreadable, or not a JSON object (a corrupt file)."""
    try:
        record = json.loads((directory / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def stale_reason(directory: Path, config_hash: str, input_digest: str | None = None) -> str | None:
    """Why the item in ``directory`` must be (re)done, or None when it is complete for this config and inputs."""
    if not (directory / RESULT).exists():
        return NOT_DONE
    record = read_result(directory)
    if record is None or record.get("status") != "complete":
        return f"{RESULT} is unreadable or incomplete"
    if record.get("config_hash") != config_hash:
        return ANOTHER_CONFIG
    if input_digest is not None and record.get("input_digest") != input_digest:
        return "its inputs (image, mask, prompt or index row) changed since it was written"
    files, sizes = record.get("files"), record.get("file_sizes") or {}
    if not isinstance(files, list) or not isinstance(sizes, dict):
        return f"{RESULT} lists no files"
    for name in files:
        path = directory / str(name)
        if not path.is_file():
            return f"its file {name} is missing"
        if name in sizes and path.stat().st_size != sizes[name]:
            return f"its file {name} is {path.stat().st_size} bytes, {sizes[name]} when written (truncated or changed)"
    return None


def write_item(directory: Path, files: dict[str, bytes], record: dict[str, Any]) -> None:
    """Write an item's files, then its result.json (the completeness marker) last.

    Whatever an earlier, interrupted or differently configured attempt left in the directory is removed
    first, so a resumed run ends with exactly the files of an uninterrupted one.
    """
    shutil.rmtree(directory, ignore_errors=True)
    for name, data in files.items():
        write_bytes(directory / name, data)
    sizes = {name: len(data) for name, data in sorted(files.items())}
    write_json(directory / RESULT, {**record, "files": sorted(files), "file_sizes": sizes, "status": "complete"})


def collect(output_dir: str | Path, item_ids: list[str]) -> list[dict[str, Any]]:
    """The result records of ``item_ids`` that exist, in dataset order."""
    records = []
    for item_id in item_ids:
        record = read_result(item_dir(output_dir, item_id))
        if record is not None and record.get("status") == "complete":
            records.append(record)
    return records


def per_item_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (item, prompt)."""
    rows = []
    for record in records:
        for entry in record.get("results", []):
            row = {
                "item_id": record["item_id"],
                "index": record["index"],
                "seed": record["seed"],
                "prompt": entry["prompt"],
            }
            for key in ("iou", "intersection", "union"):
                if key in entry:
                    row[key] = entry[key]
            row["seconds"] = record.get("timings", {}).get("seconds")
            rows.append(row)
        if "segments" in record:  # a label map (method=diffseg): one row per item
            row = {k: record[k] for k in ("item_id", "index", "seed", "segments")}
            scores = record.get("hungarian", {})
            row.update({f"hungarian_{k}": scores[k] for k in ("pixel_accuracy", "mIoU") if k in scores})
            row["seconds"] = record.get("timings", {}).get("seconds")
            rows.append(row)
    return rows


def aggregate(output_dir: str | Path, item_ids: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``metrics.json`` and ``per_item.csv`` for the run from the items' result files.

    Fixed-threshold metrics at the top level; when every scored entry carries a threshold sweep, the
    ``best_threshold`` block (labelled as tuned on the test set) and a per-item ``iou_best`` column.
    """
    output_dir = Path(output_dir)
    remove_stale_temporaries(output_dir)
    records = collect(output_dir, item_ids)
    rows = per_item_rows(records)
    scored = [r for r in rows if "iou" in r]
    metrics: dict[str, Any] = {"items": len(records), "expected_items": len(item_ids)}
    if scored:
        entries = [e for r in records for e in r.get("results", []) if "iou" in e]
        metrics["threshold"] = entries[0].get("threshold")
        metrics["postprocess"] = records[0].get("postprocess", "none")
        metrics.update(
            summarize([r["iou"] for r in scored], [r["intersection"] for r in scored], [r["union"] for r in scored])
        )
        sweeps = [e.get("scores", {}).get("sweep") for e in entries]
        if all(sweeps) and len({s["levels"] for s in sweeps}) == 1:
            best = best_threshold([s["intersection"] for s in sweeps], [s["union"] for s in sweeps])
            for row, iou in zip(scored, best.pop("ious"), strict=True):
                row["iou_best"] = iou
            metrics["best_threshold"] = {"note": TUNED_NOTE, **best}
    metrics.update(summarize_hungarian([r["hungarian"] for r in records if "hungarian" in r]))
    seconds = [r["seconds"] for r in rows if r.get("seconds") is not None]
    if seconds:  # every timing lives under "timings": the only part of the outputs that varies between runs
        metrics["timings"] = {"seconds_per_item": sum(seconds) / len(seconds)}
    metrics.update(extra or {})
    write_json(output_dir / "metrics.json", metrics)
    if rows:
        write_text(output_dir / "per_item.csv", csv_text(rows))
    return metrics
