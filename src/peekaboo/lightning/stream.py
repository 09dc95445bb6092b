"""Items in, finished items out, over a ``ContinuousEngine``: an item is finished once all its units are.

``schedule.stop=converged`` runs this way: the data module hands the module one item per predict step, the
item's units join the engine's queue, and the step returns the items that finished meanwhile (the writer
writes them at once, atomically); the last step drains the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from peekaboo.data.base import Item
from peekaboo.engine.continuous import ContinuousEngine, UnitJob, UnitOutcome, stack_outcomes
from peekaboo.engine.optimize import EngineResult
from peekaboo.errors import NonFiniteError
from peekaboo.tasks.base import Unit

JobFactory = Callable[[Item, int], tuple[list[Unit], list[UnitJob]]]  # (item, its key) -> its units and jobs


@dataclass
class _Pending:
    item: Item
    units: list[Unit]
    done: dict[int, UnitOutcome]


class ItemStream:
    def __init__(self, engine: ContinuousEngine, jobs: JobFactory):
        self.engine, self.jobs = engine, jobs
        self.pending: dict[int, _Pending] = {}
        self._next_key = 0

    def submit(self, items: Iterable[Item]) -> None:
        for item in items:
            key, self._next_key = self._next_key, self._next_key + 1
            units, jobs = self.jobs(item, key)
            self.pending[key] = _Pending(item, units, {})
            self.engine.submit(jobs)

    def run(self, drain: bool) -> list[tuple[Item, list[Unit], EngineResult]]:
        """Step the engine (see ``ContinuousEngine.run``); the items whose units have all finished, in the order
        they finished."""
        finished = []
        try:
            outcomes = self.engine.run(drain)
        except NonFiniteError as err:  # one unit's outcome: name its item and prompt
            raise err.for_items([self._unit_name(*err.key)]) from None
        for outcome in outcomes:
            key, unit = outcome.key
            pending = self.pending[key]
            pending.done[unit] = outcome
            if len(pending.done) == len(pending.units):
                del self.pending[key]
                outcomes = [pending.done[k] for k in range(len(pending.units))]
                finished.append((pending.item, pending.units, stack_outcomes(outcomes)))
        return finished

    def _unit_name(self, key: int, unit: int) -> str:
        pending = self.pending[key]
        return f"item '{pending.item.item_id}' (prompt {pending.units[unit].prompt!r})"
