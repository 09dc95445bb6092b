"""Titled panel grids as PNG figures (matplotlib's object API on the Agg canvas: no pyplot state, no display)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from peekaboo.io.atomic import write_bytes


@dataclass
class Panel:
    image: np.ndarray | None  # (H, W, 3) uint8 or (H, W) float in [0, 1] (shown grey); None: an empty cell
    title: str = ""


def panel_figure(rows: list[list[Panel]], path: Path, title: str = "", cell: float = 1.6) -> Path:
    """Write a grid of panels (rows of columns) to ``path`` (PNG, atomically); returns the path."""
    ncols = max(len(r) for r in rows)
    figure = Figure(figsize=(cell * ncols, cell * len(rows) + (0.4 if title else 0)), dpi=150)
    FigureCanvasAgg(figure)
    axes = np.atleast_2d(figure.subplots(len(rows), ncols, squeeze=False))
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i, j]
            ax.set_axis_off()
            panel = row[j] if j < len(row) else None
            if panel is None or panel.image is None:
                continue
            grey = panel.image.ndim == 2
            ax.imshow(panel.image, cmap="gray" if grey else None, vmin=0 if grey else None, vmax=1 if grey else None)
            ax.set_title(panel.title, fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes(path, buffer.getvalue())
    return path
