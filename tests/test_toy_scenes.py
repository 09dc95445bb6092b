"""Toy scenes: deterministic, with valid ground truth, and served as dataset Items in [0, 1]."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from peekaboo.data.base import Item
from peekaboo.data.toy import ToyDataset
from peekaboo.errors import DataError
from peekaboo.toy.scenes import BACKGROUNDS, make_scene
from peekaboo.toy.shapes import rasterize, template_grid
from peekaboo.toy.vocabulary import CLASSES, colour_mean, normalize_prompt, parse_prompt, valid_prompts

CASES = [
    (seed, size, background, distractors)
    for seed in range(6)
    for size in (32, 64)
    for background, distractors in zip(BACKGROUNDS, (0, 1, 2, 3), strict=True)
]


def _support(obj, size: int) -> np.ndarray:
    return rasterize(obj.cls.shape, [obj.cx], [obj.cy], [obj.size], size, size)[0] > 0


def test_same_seed_same_scene_bit_identical() -> None:
    for background in BACKGROUNDS:
        first, second = make_scene(11, background=background), make_scene(11, background=background)
        assert first.image.tobytes() == second.image.tobytes()
        assert first.mask.tobytes() == second.mask.tobytes()
        assert (first.target, first.distractors) == (second.target, second.distractors)
    other = make_scene(12)
    assert not np.array_equal(other.image, make_scene(11).image)


def test_different_seeds_give_varied_scenes() -> None:
    scenes = [make_scene(seed) for seed in range(20)]
    assert len({s.image.tobytes() for s in scenes}) == 20
    assert len({s.prompt for s in scenes}) >= 6
    assert len({(s.target.cx, s.target.cy, s.target.size) for s in scenes}) >= 15


@pytest.mark.parametrize(("seed", "size", "background", "distractors"), CASES)
def test_scene_ground_truth(seed: int, size: int, background: str, distractors: int) -> None:
    scene = make_scene(seed, size=size, distractors=distractors, background=background)
    assert scene.image.shape == (3, size, size) and scene.image.dtype == np.float32
    assert scene.image.min() >= -1 and scene.image.max() <= 1
    assert scene.mask.dtype == np.uint8 and set(np.unique(scene.mask)) <= {0, 1}
    # The mask is the thresholded target template; objects span 30-50 % of the side.
    target = scene.target
    assert 0.3 * size <= target.size <= 0.5 * size
    template = rasterize(target.cls.shape, [target.cx], [target.cy], [target.size], size, size)[0] >= 0.5
    assert np.array_equal(scene.mask, template.astype(np.uint8))
    assert 0.045 <= scene.mask.mean() <= 0.25
    assert scene.prompt == f"{target.cls.colour} {target.cls.shape}"
    assert len(scene.distractors) == distractors
    occupied = _support(target, size)
    for distractor in scene.distractors:
        assert distractor.cls != target.cls
        support = _support(distractor, size)
        assert not (support & occupied).any()
        occupied |= support
    # Objects are near their prior colour; the background stays near the grey axis (no vocabulary colours).
    for obj in [target, *scene.distractors]:
        assert np.abs(np.array(obj.rgb) - np.array(colour_mean(obj.cls.colour))).max() < 0.75
    background_pixels = scene.image[:, ~occupied]
    assert (background_pixels.max(0) - background_pixels.min(0)).max() < 1.0


def test_objects_lie_on_the_prior_grid() -> None:
    grid = {tuple(row) for row in template_grid(32).tolist()}
    for seed in range(10):
        scene = make_scene(seed, distractors=2)
        for obj in [scene.target, *scene.distractors]:
            assert (obj.cx, obj.cy, obj.size) in grid


def test_target_prompt_fixes_the_class() -> None:
    for seed in range(5):
        assert make_scene(seed, target="Blue Square").prompt == "blue square"
        assert make_scene(seed, target="triangle").target.cls.shape == "triangle"


def test_errors() -> None:
    with pytest.raises(DataError, match="'purple blob'"):
        make_scene(0, target="purple blob")
    with pytest.raises(DataError, match="stripes"):
        make_scene(0, background="checkers")
    with pytest.raises(DataError, match="non-overlapping"):
        make_scene(0, distractors=8)


def test_vocabulary() -> None:
    assert len(CLASSES) == 12 and len({c.index for c in CLASSES}) == 12
    assert [c.index for c in CLASSES] == list(range(12))
    assert normalize_prompt("  An  YELLOW triangle ") == "yellow triangle"
    assert [c.prompt for c in parse_prompt("the red circle")] == ["red circle"]
    assert {c.colour for c in parse_prompt("Square")} == {"red", "green", "blue", "yellow"}
    with pytest.raises(DataError) as info:
        parse_prompt("red circles")
    assert all(prompt in str(info.value) for prompt in valid_prompts())


def test_dataset_items() -> None:
    dataset = ToyDataset(num_scenes=5, size=32, distractors=1, background="stripes", seed=3)
    assert len(dataset) == 5
    items = [dataset[i] for i in reversed(range(5))][::-1]
    for i, item in enumerate(items):
        assert isinstance(item, Item)
        assert item.index == i and item.item_id == f"scene_{i:04d}"
        assert item.image.shape == (3, 32, 32) and item.image.dtype == torch.float32
        assert item.image.min() >= 0 and item.image.max() <= 1
        assert item.mask.shape == (32, 32) and item.mask.dtype == np.uint8
        assert item.display is None
        assert item.prompts == [item.meta["target"]["prompt"]]
        assert item.meta["background"] == "stripes" and len(item.meta["distractors"]) == 1
        json.dumps(item.meta)
        scene = make_scene(item.meta["seed"], 32, 1, "stripes")
        assert np.array_equal(item.mask, scene.mask)
        torch.testing.assert_close(item.image, torch.from_numpy((scene.image + 1) / 2))
    again = ToyDataset(num_scenes=5, size=32, distractors=1, background="stripes", seed=3)[2]
    assert torch.equal(again.image, items[2].image)
    assert not torch.equal(ToyDataset(num_scenes=5, background="stripes", seed=4)[2].image, items[2].image)
    with pytest.raises(IndexError):
        dataset[5]


def test_dataset_prompt_override() -> None:
    dataset = ToyDataset(num_scenes=3, prompt="red circle")
    for i in range(3):
        item = dataset[i]
        assert item.prompts == ["red circle"] and item.meta["target"]["prompt"] == "red circle"
    with pytest.raises(DataError) as info:
        ToyDataset(prompt="purple hexagon")
    assert "'purple hexagon'" in str(info.value) and "red circle" in str(info.value)
    with pytest.raises(DataError):
        ToyDataset(background="checkers")
