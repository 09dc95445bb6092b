"""Bad numbers fail at start-up naming the key; a diverged optimisation fails its item and writes nothing for it."""

from __future__ import annotations

import logging

import lightning
import pytest
import torch

from conftest import compose, module_and_items, run_cli
from peekaboo.config.validate import validate
from peekaboo.errors import ConfigError, NonFiniteError
from peekaboo.lightning.datamodule import ItemDataModule
from peekaboo.lightning.writer import ItemWriter


@pytest.mark.parametrize(
    ("overrides", "key", "text"),
    [
        (["optimizer.lr=nan"], "optimizer.lr", "must be a finite number, got nan"),
        (["optimizer.lr=inf"], "optimizer.lr", "must be a finite number, got inf"),
        (["optimizer.lr=-0.5"], "optimizer.lr", "must be > 0, got -0.5"),
        (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas", "must lie in [0, 1)"),
        (["data.size=0"], "data.size", "must be >= 1, got 0"),
        (["data.num_scenes=-2"], "data.num_scenes", "must be >= 1, got -2"),
        (["data=image", "data.path=x.png", "data.prompt=a dog", "data.resolution=0"], "data.resolution", ">= 1"),
        (["data=folder", "data.root=x", "data.resolution=-64"], "data.resolution", "must be >= 1, got -64"),
        (["loss.sds.guidance_scale=nan"], "loss.sds.guidance_scale", "finite"),
        (["param=fourier", "param.field.num_features=0"], "param.field.num_features", "must be >= 1, got 0"),
        (["optimizer.lr=${nowhere}"], "optimizer.lr", "Interpolation key 'nowhere' not found"),
        (["run_name=../../elsewhere"], "run_name", "must be a relative name without '..'"),
    ],
)
def test_bad_numbers_fail_at_validation_naming_the_key(overrides, key, text):
    with pytest.raises(ConfigError) as err:
        validate(compose(overrides))
    assert err.value.key == key and text in str(err.value)


def test_a_negative_lambda_alpha_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="peekaboo"):
        validate(compose(["loss.lambda_alpha=-0.01"]))
    assert "loss.lambda_alpha=[-0.01] is negative" in caplog.text


def test_a_gpu_trainer_without_a_gpu_is_one_message(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"config error at 'trainer.accelerator': 'gpu' but no CUDA GPU is visible"):
        validate(compose(["trainer=gpu"]))


def test_validation_fails_before_any_model_loads(tmp_path):
    # sd15 is not in the (offline) cache: had the model been loaded first, the error would be about its weights
    result = run_cli(["model=sd15", "optimizer.lr=-1", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: config error at 'optimizer.lr': must be > 0, got -1.0 (a negative step size climbs the loss)"
    )


class Items(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items, self.item_ids = items, [item.item_id for item in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_a_diverged_item_fails_with_its_name_and_is_never_complete(tmp_path):
    module, items = module_and_items("toy", "raster", 2)
    items[1].image[:, :4, :4] = float("nan")  # a corrupt input: the loss of its item goes NaN
    trainer = lightning.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[ItemWriter(tmp_path, [item.item_id for item in items])],
        inference_mode=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(NonFiniteError, match=r"diverged .* for item 'scene_0001' \(prompt '.+'\); no result"):
        trainer.predict(module, datamodule=ItemDataModule(Items(items), tmp_path, "h"), return_predictions=False)
    assert (tmp_path / "items" / "scene_0000" / "result.json").is_file()
    assert not (tmp_path / "items" / "scene_0001").exists()


def test_the_engine_names_the_diverged_units_only():
    module, items = module_and_items("toy", "raster", 2)
    items[0].image[:] = float("inf")
    with pytest.raises(NonFiniteError) as err:
        module.optimize_batch(items)
    assert err.value.units == [0] and "item 'scene_0000'" in str(err.value) and "scene_0001" not in str(err.value)


def test_a_continuous_batch_names_the_diverged_item():
    """schedule.stop=converged runs units in a continuous batch: a diverged unit is named there too, not written."""
    module, items = module_and_items("toy", "raster", 2, "schedule.stop=converged")
    items[1].image[:] = float("inf")
    with pytest.raises(NonFiniteError, match=r"diverged .* for item 'scene_0001' \(prompt '.+'\); no result"):
        module.optimize_stream(items, slots=2)
