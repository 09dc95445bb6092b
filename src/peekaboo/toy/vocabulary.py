"""The toy world's vocabulary: a prompt names a (shape, colour) class, so the "text encoder" is a lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass

from peekaboo.errors import DataError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# RGB corners of the cube [-1, 1]^3; the prior's object colour mean is ``colour_scale`` times the corner.
COLOUR_CORNERS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, -1.0, -1.0),
    "green": (-1.0, 1.0, -1.0),
    "blue": (-1.0, -1.0, 1.0),
    "yellow": (1.0, 1.0, -1.0),
}
COLOURS: tuple[str, ...] = tuple(COLOUR_CORNERS)
DEFAULT_COLOUR_SCALE = 0.8


@dataclass
class ToyDistribution:
    """The toy world's image distribution ``x = m f + (1 - m) g + n`` (object colour f ~ N(colour_scale * corner,
    sf^2), background g ~ N(0, sg^2), pixel noise n ~ N(0, sn^2)). One definition for the analytic prior, which
    models it exactly (``model=toy``), and the learned prior's training images, so the two cannot drift apart."""

    sf: float = 0.15  # object colour std
    sg: float = 0.6  # plain background colour std
    sn: float = 0.05  # pixel noise std
    colour_scale: float = DEFAULT_COLOUR_SCALE


@dataclass(frozen=True)
class ToyClass:
    """One class of the toy world; ``index`` is shape-major, so (shape, colour) tensors reshape directly."""

    shape: str
    colour: str

    @property
    def prompt(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def index(self) -> int:
        return SHAPES.index(self.shape) * len(COLOURS) + COLOURS.index(self.colour)


CLASSES: tuple[ToyClass, ...] = tuple(ToyClass(shape, colour) for shape in SHAPES for colour in COLOURS)
_BY_PROMPT: dict[str, tuple[ToyClass, ...]] = {
    **{cls.prompt: (cls,) for cls in CLASSES},
    **{shape: tuple(cls for cls in CLASSES if cls.shape == shape) for shape in SHAPES},
}


def valid_prompts() -> list[str]:
    """Every prompt the toy world understands: each '<colour> <shape>' and each bare shape."""
    return list(_BY_PROMPT)


def normalize_prompt(prompt: str) -> str:
    """Lower-case, collapse whitespace and drop a leading article, so 'A  Red Circle' means 'red circle'."""
    return re.sub(r"^(a|an|the) ", "", " ".join(prompt.lower().split()))


def parse_prompt(prompt: str) -> tuple[ToyClass, ...]:
    """The classes a prompt denotes: one for '<colour> <shape>', all colours of the shape for a bare shape.

    Raises DataError quoting the prompt and listing the vocabulary, because a typo would otherwise
    silently segment nothing; it also says how to pick Stable Diffusion, for prompts meant for real images.
    """
    classes = _BY_PROMPT.get(normalize_prompt(prompt))
    if classes is None:
        raise DataError(
            f"prompt {prompt!r} is not in the toy world's vocabulary: use '<colour> <shape>' with colour in "
            f"{', '.join(COLOURS)} and shape in {', '.join(SHAPES)} (a bare shape means any colour); "
            f"valid prompts: {', '.join(valid_prompts())}. The toy world is the default model; for open-vocabulary "
            "prompts use Stable Diffusion: model=sd15 on the command line, Peekaboo(model='sd15') in Python"
        )
    return classes


def colour_mean(colour: str, scale: float = DEFAULT_COLOUR_SCALE) -> tuple[float, float, float]:
    """The prior's mean RGB (in [-1, 1]) of an object of ``colour``."""
    r, g, b = COLOUR_CORNERS[colour]
    return (scale * r, scale * g, scale * b)
