"""Titled panel grids as PNG figures (matplotlib's object API on the Agg canvas: no pyplot state, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence
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


@dataclass
class Curve:
    values: Sequence[float]  # one value per iteration
    label: str = ""
    marker: int | None = None  # an iteration marked by a dashed vertical line (e.g. where the curve settles)


@dataclass
class Plot:
    curves: list[Curve]
    title: str = ""
    ylabel: str = ""
    xlabel: str = "iteration"


def panel_figure(rows: list[list[Panel]], path: Path, title: str = "", cell: float = 1.6) -> Path:
    """Write a grid of panels (rows of columns) to ``path`` (PNG, atomically); returns the path."""
    ncols = max(len(r) for r in rows)
    figure = Figure(figsize=(cell * ncols, cell * len(rows) + (0.4 if title else 0)), dpi=150)
    FigureCanvasAgg(figure)
    _draw_panels(figure, rows, ncols)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def panels_and_plots_figure(
    rows: list[list[Panel]], plots: list[Plot], path: Path, title: str = "", cell: float = 1.6
) -> Path:
    """Panels (rows of columns) above a row of line plots side by side (e.g. frames and their curves)."""
    ncols = max(max(len(r) for r in rows), 2 * len(plots))
    height = 2.4
    figure = Figure(
        figsize=(cell * ncols, cell * len(rows) + height + (0.4 if title else 0)), dpi=150, layout="constrained"
    )
    FigureCanvasAgg(figure)
    top, bottom = figure.subfigures(2, 1, height_ratios=[cell * len(rows), height])
    _draw_panels(top, rows, ncols)
    for ax, plot in zip(np.atleast_1d(bottom.subplots(1, len(plots), squeeze=False))[0], plots, strict=True):
        for k, curve in enumerate(plot.curves):
            colour = f"C{k}"
            ax.plot(np.arange(len(curve.values)), curve.values, color=colour, linewidth=1, label=curve.label)
            if curve.marker is not None:
                ax.axvline(curve.marker, color=colour, linestyle="--", linewidth=0.8)
        ax.set_title(plot.title, fontsize=8)
        ax.set_xlabel(plot.xlabel, fontsize=7)
        ax.set_ylabel(plot.ylabel, fontsize=7)
        ax.tick_params(labelsize=6)
        if any(curve.label for curve in plot.curves):
            ax.legend(fontsize=6)
    if title:
        figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def _draw_panels(figure, rows: list[list[Panel]], ncols: int) -> None:
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


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes(path, buffer.getvalue())
    return path
