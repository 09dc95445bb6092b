"""Several prompts per image: the same masks as single-prompt runs, per-prompt outputs, every index format."""

import dataclasses
import io
import json

import numpy as np
import pytest
import torch

from conftest import compose
from peekaboo.config.build import build
from peekaboo.data.folder import FolderDataset
from peekaboo.lightning.module import PeekabooModule


@pytest.fixture(scope="module")
def toy_module():
    cfg = compose(["experiment=toy", "schedule.iterations=30", "schedule.timelapse_every=15"])
    module = PeekabooModule(cfg)
    module._state = PeekabooModule.build(cfg, torch.device("cpu"))
    return module, build(cfg.data)


def alpha_of(files, name):
    return np.load(io.BytesIO(files[name]))


def test_two_prompt_item_equals_two_single_prompt_runs(toy_module):
    """A toy scene's target and its distractor, optimised together (one batched prior call per iteration) and
    alone: each prompt's mask is the same up to float rounding (as test_batching's, matrix products of other row
    counts may round differently), because every unit keeps its own parameters and random streams."""
    module, dataset = toy_module
    item = dataset[0]
    prompts = [item.prompts[0], item.meta["distractors"][0]["prompt"]]
    both = module.predict_step([dataclasses.replace(item, prompts=prompts)], 0)[0]
    for k, prompt in enumerate(prompts):
        alone = module.predict_step([dataclasses.replace(item, prompts=[prompt])], 0)[0]
        slug = f"prompts/{k:02d}_{prompt.replace(' ', '_')}/"
        np.testing.assert_allclose(
            alpha_of(both.files, slug + "alpha.npy"), alpha_of(alone.files, "alpha.npy"), atol=1e-5
        )
        for name in ("alpha.png", "mask.png", "overlay.png", "timelapse.gif"):
            assert slug + name in both.files
    assert "overlay.png" in both.files  # the combined, colour-coded overlay
    results = both.record["results"]
    assert [r["prompt"] for r in results] == prompts
    assert results[0]["overlay_colour"] != results[1]["overlay_colour"]
    assert both.record["prompts"] == prompts and "iou" not in both.record  # one ground truth, several prompts


def test_index_files_carry_several_prompts(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "index.csv").write_text("image,prompt\na.png,a dog|a couch\n")
    (tmp_path / "index.json").write_text(json.dumps([{"image": "a.png", "prompt": ["a dog", " a couch "]}]))
    for index in ("index.csv", "index.json"):
        assert FolderDataset(str(tmp_path), index, resolution=8)[0].prompts == ["a dog", "a couch"]
    cfg = compose(["data=image", "data.path=a.png", "data.prompt=[a dog,a couch]"])
    assert list(cfg.data.prompt) == ["a dog", "a couch"]
