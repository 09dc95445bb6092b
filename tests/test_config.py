"""Typed configs: typos and bad values fail at start-up, naming the key; schedules parse and interpolate."""

import pytest
from hydra.errors import ConfigCompositionException, HydraException
from omegaconf.errors import ConfigKeyError, ValidationError

from conftest import compose, run_cli
from peekaboo.config.validate import validate
from peekaboo.errors import ConfigError
from peekaboo.schedules import Schedule

BASE = ["model=tiny_sd", "data=image", "data.path=x.png", "data.prompt=a dog"]


def test_defaults_compose_and_validate():
    cfg = compose([])
    validate(cfg)
    assert cfg.param.name == "raster_bilateral"
    assert cfg.optimizer.lr == cfg.param.recipe.lr or cfg.optimizer.lr == cfg.param.recipe.adam_lr


def test_paper_presets_follow_the_original():
    cfg = compose(BASE + ["model=sd14"])
    assert cfg.model.path == "CompVis/stable-diffusion-v1-4"
    assert cfg.loss.sds.min_step == 0.02 and cfg.loss.sds.max_step == 0.98
    assert cfg.schedule.iterations == 300 and cfg.optimizer.name == "sgd"
    expected = {
        "raster": (1.0, 0.1, 200.0),
        "raster_bilateral": (1.0, 0.05, 200.0),
        "fourier": (1e-5, 0.05, 100.0),
        "fourier_bilateral": (1e-5, 0.05, 100.0),
    }
    for name, (lr, lam, scale) in expected.items():
        cfg = compose(BASE + ["model=sd14", f"param={name}"])
        assert (cfg.optimizer.lr, cfg.loss.lambda_alpha, cfg.loss.sds.guidance_scale) == (lr, lam, scale)
    bilateral = compose(BASE + ["model=sd14", "param=raster_bilateral"]).param.bilateral
    assert (bilateral.kernel_size, bilateral.tolerance, bilateral.sigma, bilateral.iterations) == (3, 0.08, 5.0, 40)


def test_misspelled_key_names_the_key():
    with pytest.raises((ConfigCompositionException, ConfigKeyError, HydraException)) as err:
        compose(BASE + ["loss.lamda_alpha=0.1"])
    assert "lamda_alpha" in str(err.value) + str(err.value.__cause__)


def test_unknown_preset_lists_the_group():
    with pytest.raises(ConfigCompositionException) as err:
        compose(BASE + ["param=nope"])
    assert "param" in str(err.value) and "raster_bilateral" in str(err.value)


def test_non_numeric_lambda_names_the_key():
    cfg = compose(BASE + ["loss.lambda_alpha=abc"])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key == "loss.lambda_alpha" and "abc" in str(err.value)


def test_typed_field_rejects_wrong_type():
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        compose(BASE + ["schedule.iterations=many"])
    assert "iterations" in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("low,high", [("0.5", "0.5"), ("0.7", "0.3")])
def test_min_step_must_be_below_max_step(low, high):
    cfg = compose(BASE + [f"loss.sds.min_step={low}", f"loss.sds.max_step={high}"])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert err.value.key == "loss.sds.min_step" and "max_step" in str(err.value)


def test_scheduled_step_bounds_are_checked_at_every_point():
    cfg = compose(BASE + ["loss.sds.min_step=[[0,0.02],[100,0.6]]", "loss.sds.max_step=[[0,0.98],[100,0.5]]"])
    with pytest.raises(ConfigError, match="iteration 100"):
        validate(cfg)


def test_schedule_parsing_and_interpolation():
    assert Schedule.parse(0.05, "k")(123) == 0.05
    s = Schedule.parse([[0, 0.0], [100, 1.0], [200, 3.0]], "k")
    assert [s(i) for i in (0, 50, 100, 150, 200, 500)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    for bad in ("abc", [[0]], [[10, 1], [5, 2]], True, []):
        with pytest.raises(ConfigError, match="k"):
            Schedule.parse(bad, "k")


def test_cli_reports_config_errors_without_traceback(tmp_path):
    result = run_cli(BASE + ["loss.lambda_alpha=abc", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode == 2
    assert "loss.lambda_alpha" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(BASE + ["loss.lamda_alpha=0.1", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode != 0 and "lamda_alpha" in result.stderr and "Traceback" not in result.stderr


def test_cli_reports_missing_image_by_key(tmp_path):
    result = run_cli(
        ["model=tiny_sd", "data=image", "data.path=missing.jpg", "data.prompt=a dog", f"hydra.run.dir={tmp_path}/run"],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "data.path" in result.stderr and "missing.jpg" in result.stderr
    assert not (tmp_path / "run" / "items").exists()


def test_evaluation_presets_compose():
    cfg = compose(["experiment=table1_refcoco"])
    assert (cfg.data.name, cfg.data.crop.value, cfg.model.path) == ("refcoco_c", "box", "CompVis/stable-diffusion-v1-4")
    assert (cfg.schedule.iterations, cfg.loss.sds.min_step, cfg.loss.sds.max_step) == (100, 0.2, 0.4)
    assert compose(["experiment=table2_voc_c"]).data.name == "voc_c"
    chain = compose(["task/postprocess=original"]).task.postprocess
    assert (chain.standardize, chain.blur_sigma, chain.dilate, chain.threshold) == (True, 3.0, 5, 0.2)
    assert compose(["row=fourier"]).param.name == "fourier"


@pytest.mark.parametrize("key", ["task.sweep_levels=-1", "task.postprocess.dilate=-3", "task.postprocess.std_scale=0"])
def test_evaluation_values_are_checked(key):
    with pytest.raises(ConfigError) as err:
        validate(compose(BASE + [key]))
    assert err.value.key == key.split("=")[0]


def test_any_lightning_flag_reaches_the_trainer(tmp_path):
    """The trainer is built from its config (``_target_: lightning.Trainer``): flags it does not declare can be
    added with ``+``, ours (batch_size, num_workers) stay out of Lightning's way, and inference mode stays off."""
    from peekaboo.pipeline import build_trainer

    cfg = compose(["+trainer.precision=bf16-mixed", "+trainer.limit_predict_batches=3", "trainer.batch_size=4"])
    trainer = build_trainer(cfg, tmp_path, None, [])
    assert trainer.precision == "bf16-mixed" and trainer.limit_predict_batches == 3
    assert not trainer.predict_loop.inference_mode and trainer.default_root_dir == str(tmp_path)
    with pytest.raises(HydraException) as err:
        build_trainer(compose(["+trainer.precisoin=bf16-mixed"]), tmp_path, None, [])
    assert "precisoin" in str(err.value)
