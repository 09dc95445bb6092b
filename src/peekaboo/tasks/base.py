"""The ``Task`` interface, and what every task hands to the writer and the loggers for one item."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.errors import ConfigError, NonFiniteError
from peekaboo.io.tables import csv_text

if TYPE_CHECKING:
    from peekaboo.engine.optimize import EngineResult
    from peekaboo.engine.random import UnitRandom
    from peekaboo.engine.scene import Scene

GRID_DATA = "peekaboo.data.fg_bg_grid.FgBgGridDataset"


@dataclass
class Unit:
    """One optimisation: an item's prompt with the item's seed."""

    item: int  # position of the item in the batch
    prompt_index: int
    prompt: str
    seed: int  # the item's seed (cfg.seed + item index)
    stream_seed: int | None = None  # seed of the unit's own random streams when not the item's (the grid's cells)

    @property
    def random_seed(self) -> int:
        """What the unit's ``UnitRandom`` streams are seeded with."""
        return self.seed if self.stream_seed is None else self.stream_seed


@dataclass
class ItemArtifacts:
    """Everything written for one item: file bytes (relative path -> bytes) and the result.json record."""

    item_id: str
    files: dict[str, bytes]
    record: dict[str, Any]
    preview: np.ndarray | None = None  # (H, W, 3) uint8 for loggers
    masks: list[np.ndarray] = field(default_factory=list)  # per prompt, (H, W) float in [0, 1] at preview size
    gt: np.ndarray | None = None
    history: dict[str, list[list[float]]] = field(default_factory=dict)  # name -> per prompt, per iteration


class Task(ABC):
    """One kind of optimisation, selected by ``task._target_``: the units a batch holds, the scene they optimise
    together, and the files and record each item gets. A new task is a subclass plus a ``conf/task/`` preset."""

    generates_images: ClassVar[bool] = False  # True: text -> image, no input image to segment
    stops_on_convergence: ClassVar[bool] = False  # True: schedule.stop=converged can stop its units on their masks

    def units(self, items: list[Item], base_seed: int) -> list[Unit]:
        return units_of(items, base_seed)

    @abstractmethod
    def build_scene(
        self,
        items: list[Item],
        units: list[Unit],
        rng: UnitRandom,
        parametrization: Callable[..., torch.nn.Module],
        guides: torch.Tensor | None,
        images: torch.Tensor | None,
        n_backgrounds: int,
    ) -> Scene:
        """The batch's scene on the device; ``parametrization`` makes the learnable fields (``param``)."""

    @abstractmethod
    def artifacts(
        self, items: list[Item], units: list[Unit], result: EngineResult, record: dict
    ) -> list[ItemArtifacts]:
        """Each item's files and result record from the engine's result."""

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        """Start-up checks of the task and of the groups it pairs with (a ``ConfigError`` naming the key)."""
        if OmegaConf.select(cfg, "data._target_") == GRID_DATA:
            raise ConfigError("task", GRID_PAIR)
        if cls.generates_images:
            check_generated_image(cfg, cfg.task.name)
        stop = OmegaConf.select(cfg, "schedule.stop")
        if getattr(stop, "value", stop) == "converged" and not cls.stops_on_convergence:
            raise ConfigError(
                "schedule.stop",
                f"'converged' stops segmentation masks (task=segment), not task={cfg.task.name}: "
                "use schedule.stop=fixed",
            )


GRID_PAIR = "task=fg_bg_grid and data=fg_bg_grid (or data=fg_bg_grid_toy) go together: use experiment=fig_fg_bg_grid"


def check_generated_image(cfg: DictConfig, task: str) -> None:
    """Generation tasks have no fixed input image: nothing can guide a bilateral filter or be encoded once."""
    if cfg.param.bilateral is not None:
        raise ConfigError(
            "param.bilateral",
            f"task={task} generates its images, so nothing can guide a bilateral filter: use param=fourier_rgba or "
            "param=raster_rgba (or param.bilateral=null)",
        )
    composite = OmegaConf.select(cfg, "loss.sds.composite")
    if getattr(composite, "value", composite) == "latent":
        raise ConfigError(
            "loss.sds.composite",
            f"'latent' blends the latents of a fixed image with solid colours; task={task} generates its images: "
            "use loss.sds.composite=pixel",
        )
    positive(cfg, "task.size")


def item_record(
    item: Item, seed: int, prompts: list[str], results: list[dict[str, Any]], timings: dict[str, Any], record: dict
) -> dict[str, Any]:
    """The fields every task's result.json starts with; ``record`` adds the run's (config hash, presets)."""
    return {
        "item_id": item.item_id,
        "index": item.index,
        "seed": seed,
        "prompts": prompts,
        "results": results,
        "timings": timings,
        "meta": item.meta,
        **({"input_digest": item.digest} if item.digest is not None else {}),
        **record,
    }


def units_of(items, base_seed: int) -> list[Unit]:
    """Every (item, prompt) pair of a batch, item-major; all prompts of an item share its seed."""
    return [
        Unit(i, k, prompt, base_seed + item.index)
        for i, item in enumerate(items)
        for k, prompt in enumerate(item.prompts)
    ]


def timings(seconds: float, iterations: int, batch_units: int, item_units: int) -> dict[str, float | int]:
    """The ``timings`` of an item's result.json: its share (``item_units`` of ``batch_units``) of the batch time."""
    return {
        "batch_seconds": seconds,
        "batch_units": batch_units,
        "seconds": seconds * item_units / batch_units,
        "iterations": iterations,
        "seconds_per_iteration": seconds / max(1, iterations),
    }


def history_csv(
    history: Mapping[str, torch.Tensor], units: list[int], keys: list[dict[str, Any]] | None = None
) -> bytes:
    """``history.csv`` of one item: every per-iteration curve (``history``: name -> (iterations, U)) of ``units``.

    One row per (unit, iteration), unit-major: ``[key columns,] iteration, <name>...``; ``keys`` gives each unit's
    identifying columns (e.g. its foreground and background) when an item has several. Values keep float32's
    7 significant digits, so the file stays small and result.json keeps only the final values."""
    names = list(history)
    columns = [*(keys[0] if keys else {}), "iteration", *names]
    rows = []
    for k, unit in enumerate(units):
        curves = [history[name][:, unit].tolist() for name in names]
        for iteration, values in enumerate(zip(*curves, strict=True)):
            row = {**(keys[k] if keys else {}), "iteration": iteration}
            row.update({name: f"{value:.7g}" for name, value in zip(names, values, strict=True)})
            rows.append(row)
    return csv_text(rows, columns).encode()


@contextmanager
def units_named_on_divergence(items: list[Item], units: list[Unit]) -> Iterator[None]:
    """A ``NonFiniteError`` raised inside names the items and prompts of the units it lists."""
    try:
        yield
    except NonFiniteError as err:
        names = [f"item '{items[u.item].item_id}' (prompt {u.prompt!r})" for u in units]
        raise err.for_items(names) from None
