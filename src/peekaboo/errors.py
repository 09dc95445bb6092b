"""User-facing errors: each says what is wrong and what to do, and is printed without a traceback."""

from __future__ import annotations


class PeekabooError(Exception):
    """Base class of the errors that the command line reports as a one-paragraph message."""


class ConfigError(PeekabooError, ValueError):
    """A configuration value is invalid; the message names the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config error at '{key}': {message}")


class DataError(PeekabooError, ValueError):
    """A dataset file or item cannot be used; the message names the file or item."""


class ModelLoadError(PeekabooError, OSError):
    """Pretrained weights could not be found or loaded; the message says where we looked and how to fix it."""


class NonFiniteError(PeekabooError, ArithmeticError):
    """An optimisation produced NaN or infinite losses or parameters; ``units`` are the (item, prompt) units hit.

    Methods re-raise it naming the items (``for_items``); none of them is written, so none is marked complete."""

    def __init__(self, units: list[int], iteration: int | None = None, message: str | None = None):
        self.units, self.iteration = units, iteration
        at = f" from iteration {iteration}" if iteration is not None else ""
        super().__init__(
            message
            or f"the optimisation of units {units} produced NaN or infinite values{at}; lower optimizer.lr "
            "or check the inputs"
        )

    def for_items(self, names: list[str]) -> NonFiniteError:
        """The same error naming ``names`` (one per unit, e.g. "item 'x', prompt 'a dog'")."""
        at = f" from iteration {self.iteration}" if self.iteration is not None else ""
        hit = "; ".join(names[u] for u in self.units)
        return NonFiniteError(
            self.units,
            self.iteration,
            f"the optimisation diverged (NaN or infinite loss/parameters{at}) for {hit}; no result was written "
            "for it: lower optimizer.lr (or the recipe's lr) or check the input image",
        )


class OutputError(PeekabooError, OSError):
    """The run directory cannot be written (full disk, read-only, a file in the way) or is in use by another run."""
