"""Rows of dicts as CSV or markdown text (metrics, sweep summaries, paper tables)."""

from __future__ import annotations

import csv
import io
from typing import Any


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of ``rows``, in order of first appearance."""
    return list(dict.fromkeys(k for r in rows for k in r))


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or columns_of(rows), restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None, digits: int = 3) -> str:
    """A GitHub markdown table; floats with ``digits`` decimals, missing cells as '-'."""
    columns = columns or columns_of(rows)

    def cell(value: Any) -> str:
        if value is None or value == "":
            return "-"
        text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
