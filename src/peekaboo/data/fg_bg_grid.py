"""``data=fg_bg_grid``: the prompts of the foreground/background grid (the paper's appendix E, Fig. 17-18).

Each item is one grid (``repeats`` grids, each with its own seed): F foreground prompts x B background prompts, and
one combined prompt per cell, ``template`` filled with ``{fg}``, ``{bg}`` and ``{joiner}`` (default
"{fg} {joiner} {bg}" with joiner "by": "a bulldozer by a castle"). Cells are foreground-major: cell ``f * B + b``.
"""

from __future__ import annotations

import string

from torch.utils.data import Dataset

from peekaboo.data.base import Item
from peekaboo.data.transforms import check_prompts
from peekaboo.errors import DataError

PLACEHOLDERS = ("fg", "bg", "joiner")


def fill_template(template: str, foreground: str, background: str, joiner: str) -> str:
    """The cell prompt; a template naming anything but {fg}, {bg} and {joiner}, or lacking {fg}, is an error."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise DataError(f"data.template {template!r} is not a valid format string: {err}") from err
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown or "fg" not in names:
        raise DataError(
            f"data.template {template!r} must contain {{fg}} and may contain {{bg}} and {{joiner}}"
            + (f"; unknown placeholders {unknown}" if unknown else "")
        )
    return " ".join(template.format(fg=foreground, bg=background, joiner=joiner).split())


class FgBgGridDataset(Dataset):
    """One item per grid repeat, ids ``grid_<repeat>``; its prompts are the F x B cell prompts (foreground-major)
    and its meta the foreground and background prompts."""

    def __init__(
        self,
        foregrounds: list[str],
        backgrounds: list[str],
        joiner: str = "by",
        template: str = "{fg} {joiner} {bg}",
        repeats: int = 1,
    ):
        if repeats < 1:
            raise DataError(f"data.repeats must be >= 1, got {repeats}")
        self.foregrounds = check_prompts(list(foregrounds), "data.foregrounds")
        self.backgrounds = check_prompts(list(backgrounds), "data.backgrounds")
        self.prompts = [fill_template(template, f, b, joiner) for f in self.foregrounds for b in self.backgrounds]
        self.repeats = repeats
        self.item_ids = [f"grid_{r:03d}" for r in range(repeats)]

    def __len__(self) -> int:
        return self.repeats

    def __getitem__(self, index: int) -> Item:
        return Item(
            index=index,
            item_id=self.item_ids[index],
            image=None,
            prompts=list(self.prompts),
            meta={"foregrounds": self.foregrounds, "backgrounds": self.backgrounds, "repeat": index},
        )
