"""Every preset of every config group, and every experiment, composes and validates (compose only, no model loads);
the user's choices win over a model's tuning."""

import pytest

from conftest import CONF, compose
from peekaboo.config.validate import validate

# What a preset needs beside it to make a runnable job (generation tasks go with their data and parametrization,
# the attention baselines with a Stable Diffusion UNet, the prompt-only data with a generation task).
COMPANIONS = {
    "data=prompts": ["task=rgba", "param=fourier_rgba", "data.prompts=[red circle]"],
    "data=prompts_fig12": ["task=rgba", "param=fourier_rgba"],
    "data=prompts_toy": ["task=rgba", "param=fourier_rgba"],
    "data=fg_bg_grid": ["task=fg_bg_grid", "param=fourier_grid"],
    "data=fg_bg_grid_toy": ["task=fg_bg_grid", "param=fourier_grid"],
    "task=rgba": ["data=prompts_toy", "param=fourier_rgba"],
    "task=fg_bg_grid": ["data=fg_bg_grid_toy", "param=fourier_grid"],
    "param=fourier_rgba": ["experiment=rgba"],
    "param=raster_rgba": ["experiment=rgba"],
    "param=fourier_grid": ["experiment=fig_fg_bg_grid", "model=toy", "data=fg_bg_grid_toy"],
    "method=attn_gmm": ["model=tiny_sd"],
    "method=daam": ["model=tiny_sd"],
    "method=diffseg": ["model=tiny_sd", "data=cocostuff27"],
    "experiment=fig_implicit_vs_pixel": ["param=fourier_rgba"],  # a sweep over param
    "row=attn_gmm": ["model=tiny_sd"],
    "row=daam": ["model=tiny_sd"],
    "row=attn_gmm_bare": ["model=tiny_sd"],
    "row=raster_bilateral_half": ["model=toy_sd"],
    "row=diffseg": ["model=tiny_sd", "data=toy"],
}
GROUPS = ["method", "model", "data", "param", "optimizer", "loss", "guidance_map", "schedule", "task", "trainer"]
GROUPS += ["logger", "tuning", "experiment", "row", "task/postprocess", "param/field"]


def presets() -> list[str]:
    found = []
    for group in GROUPS:
        for path in sorted((CONF / group).glob("*.yaml")):
            found.append(f"{group}={path.stem}")
    return found


def test_every_group_has_presets():
    groups = {p.split("=")[0] for p in presets()}
    on_disk = {p.parent.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml")} - {".", "hydra/launcher"}
    assert groups == set(GROUPS) == on_disk, "a config group the test does not cover"


@pytest.mark.parametrize("preset", presets())
def test_preset_composes_and_validates(preset, monkeypatch):
    group, name = preset.split("=")
    if group == "trainer":  # GPU presets validate where GPUs are visible (without one: test_reliability_numbers)
        monkeypatch.setattr("torch.cuda.is_available", lambda: True)
        monkeypatch.setattr("torch.cuda.device_count", lambda: 8)
    if group == "tuning":  # selected by (model, param), never typed: compose the pair it tunes
        model = max((m.stem for m in (CONF / "model").glob("*.yaml") if name.startswith(f"{m.stem}_")), key=len)
        param = name.removeprefix(f"{model}_")
        overrides = [f"model={model}", f"param={param}", *COMPANIONS.get(f"param={param}", [])]
        overrides = [o for o in overrides if not o.startswith("model=")] + [f"model={model}"]
    else:
        overrides = [*COMPANIONS.get(preset, []), preset]
    cfg = compose(overrides)
    validate(cfg)
    if group == "tuning":
        assert cfg.param.name == param and cfg.model.name == model
    elif group not in ("experiment", "row", "task/postprocess", "param/field"):
        assert cfg[group].name == name or group == "method" and cfg.method.name == name


def test_user_schedule_wins_over_the_toy_tuning():
    """schedule=quick on the toy world runs quick's 20 iterations (the toy recipe sets paper-length schedules only)."""
    quick = compose(["schedule=quick"])
    assert (quick.schedule.name, quick.schedule.iterations, quick.schedule.timelapse_every) == ("quick", 20, 5)
    assert compose(["experiment=demo", "schedule=quick"]).schedule.iterations == 20
    assert compose([]).schedule.iterations == 200  # the paper preset on the toy world: its tuned length
    assert compose(["model=sd15"]).schedule.iterations == 300
    assert compose(["experiment=rgba"]).schedule.iterations == 300
    assert compose(["experiment=rgba", "model=sd14"]).schedule.iterations == 10000
    assert compose(["schedule.iterations=7"]).schedule.iterations == 7


def test_the_toy_tuning_batches_its_scenes_and_the_user_batch_wins():
    """The toy recipe's batch (param.recipe.batch_size: all 16 default scenes) is what every trainer preset reads;
    a typed trainer.batch_size wins, and like the trainer's own it leaves the resume hash alone."""
    from peekaboo.pipeline import config_hash

    assert compose([]).trainer.batch_size == 16 and compose(["trainer=gpu"]).trainer.batch_size == 16
    assert compose(["trainer.batch_size=3"]).trainer.batch_size == 3
    assert compose(["model=sd15"]).trainer.batch_size == 1
    assert compose(["model=sd15", "trainer=gpu"]).trainer.batch_size == 4
    assert config_hash(compose([])) == config_hash(compose(["trainer.batch_size=3"]))
    assert config_hash(compose([])) == config_hash(compose(["param.recipe.batch_size=2"]))


def test_one_toy_experiment_for_every_parametrization():
    for param in ("raster", "raster_bilateral", "fourier", "fourier_bilateral"):
        cfg = compose(["experiment=toy", f"param={param}"])
        assert (cfg.run_name, cfg.model.name, cfg.data.num_scenes, cfg.trainer.batch_size) == (
            f"toy_{param}",
            "toy",
            16,
            16,
        )
    assert compose(["experiment=demo"]).run_name == "demo"
