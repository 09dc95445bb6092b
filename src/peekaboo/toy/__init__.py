"""The toy world: a known image distribution (vocabulary, shapes, scenes) whose exact diffusion prior is
``peekaboo.priors.toy.ToyPrior``, so Peekaboo can be run and checked against ground truth on a CPU."""

from peekaboo.toy.scenes import BACKGROUNDS, ToyObject, ToyScene, make_scene, scene_seed
from peekaboo.toy.shapes import rasterize, template_grid
from peekaboo.toy.vocabulary import CLASSES, COLOURS, SHAPES, ToyClass, parse_prompt, valid_prompts

__all__ = [
    "BACKGROUNDS",
    "CLASSES",
    "COLOURS",
    "SHAPES",
    "ToyClass",
    "ToyObject",
    "ToyScene",
    "make_scene",
    "parse_prompt",
    "rasterize",
    "scene_seed",
    "template_grid",
    "valid_prompts",
]
