"""The run's one progress bar: items done, with the current batch's optimisation iteration in its postfix.

On a terminal it is a tqdm bar on stderr; otherwise (output redirected to a file, a cluster job's log) there is
no bar and no carriage return: one log line per finished batch, which Hydra's job log (run.log) keeps too."""

from __future__ import annotations

import logging
import sys
import time

from lightning.pytorch.callbacks.progress import ProgressBar
from tqdm.auto import tqdm

from peekaboo.engine.optimize import Step

log = logging.getLogger("peekaboo")


class ItemProgress(ProgressBar):
    def __init__(self, interactive: bool | None = None):
        super().__init__()
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._enabled = True
        self.bar: tqdm | None = None
        self.done = self.total = 0
        self.start = 0.0

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self._trainer is not None and self.trainer.is_global_zero

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_predict_start(self, trainer, pl_module) -> None:
        loaders = trainer.predict_dataloaders
        loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
        self.total = sum(len(loader.sampler) for loader in loaders)  # this rank's items
        self.done, self.start = 0, time.perf_counter()
        if self.is_enabled and self.interactive:
            self.bar = tqdm(total=self.total, desc="items", unit="item", file=sys.stderr, dynamic_ncols=True)

    def on_optimization_step(self, trainer, pl_module, step: Step) -> None:
        """After every optimisation step of the current batch (``PeekabooModule.step_observer``)."""
        if self.bar is not None:
            total = pl_module.cfg.schedule.iterations
            self.bar.set_postfix_str(f"iteration {step.iteration + 1}/{total}", refresh=False)
            self.bar.update(0)  # redraws at most every tqdm mininterval

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.done += len(batch)
        if self.bar is not None:
            self.bar.update(len(batch))
        elif self.is_enabled:
            log.info("items %d/%d done (%.1f s)", self.done, self.total, time.perf_counter() - self.start)

    def on_predict_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
