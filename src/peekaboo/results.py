"""Per-item results on disk: completeness (for resuming), and the run-level aggregation.

An item is complete when its ``result.json`` exists, says ``"status": "complete"``, was produced by the same
result-affecting configuration (``config_hash``) and every file it lists exists. ``result.json`` is written
last and atomically, so a crash at any point leaves the item incomplete, and it is redone.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from peekaboo.io.atomic import write_bytes, write_json, write_text
from peekaboo.metrics import summarize, summarize_hungarian

RESULT = "result.json"


def item_dir(output_dir: str | Path, item_id: str) -> Path:
    return Path(output_dir) / "items" / item_id


def read_result(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / RESULT).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_complete(directory: Path, config_hash: str) -> bool:
    record = read_result(directory)
    return (
        record is not None
        and record.get("status") == "complete"
        and record.get("config_hash") == config_hash
        and all((directory / f).is_file() for f in record.get("files", []))
    )


def write_item(directory: Path, files: dict[str, bytes], record: dict[str, Any]) -> None:
    """Write an item's files, then its result.json (the completeness marker) last."""
    (directory / RESULT).unlink(missing_ok=True)
    for name, data in files.items():
        write_bytes(directory / name, data)
    write_json(directory / RESULT, {**record, "files": sorted(files), "status": "complete"})


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
    """Write ``metrics.json`` and ``per_item.csv`` for the run from the items' result files."""
    output_dir = Path(output_dir)
    records = collect(output_dir, item_ids)
    rows = per_item_rows(records)
    scored = [r for r in rows if "iou" in r]
    metrics: dict[str, Any] = {"items": len(records), "expected_items": len(item_ids)}
    if scored:
        metrics.update(
            summarize([r["iou"] for r in scored], [r["intersection"] for r in scored], [r["union"] for r in scored])
        )
    metrics.update(summarize_hungarian([r["hungarian"] for r in records if "hungarian" in r]))
    seconds = [r["seconds"] for r in rows if r.get("seconds") is not None]
    if seconds:
        metrics["seconds_per_item"] = sum(seconds) / len(seconds)
    metrics.update(extra or {})
    write_json(output_dir / "metrics.json", metrics)
    if rows:
        buffer = io.StringIO()
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        write_text(output_dir / "per_item.csv", buffer.getvalue())
    return metrics
