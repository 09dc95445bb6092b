"""The toy SD (model=toy_sd): a small Stable Diffusion trained on the toy world, loaded by the unchanged
StableDiffusionPrior from the weights shipped in the package; its samples and Peekaboo through it are checked."""

import json
from pathlib import Path

import pytest
import torch

from conftest import compose, run_cli
from peekaboo.config.build import build
from peekaboo.priors.stable_diffusion import StableDiffusionPrior
from peekaboo.toy.check_prior import check, classify
from peekaboo.toy.learned import WEIGHTS_DIR
from peekaboo.toy.learned.images import ToyImageSampler, captions
from peekaboo.toy.learned.sampling import load_pipeline
from peekaboo.toy.learned.tokenizer import toy_tokenizer
from peekaboo.toy.scenes import make_scene
from peekaboo.toy.vocabulary import CLASSES, COLOURS, SHAPES

# The target for the sample check is 0.9 of the samples with the prompted shape and colour; the shipped
# weights score 0.979 over 96 samples and 12/12 in the fast check (docs/toy_world.md).
FAST_CHECK_FLOORS = {"colour": 0.9, "both": 0.9}  # 12 samples (one per class), 25 DDIM steps
FULL_CHECK_FLOORS = {"colour": 0.9, "both": 0.9}  # 96 samples, 50 DDIM steps, CFG 7.5
FEW_SCENES_FLOOR = 0.6  # raster_bilateral, the first 4 test scenes
# 16 scenes; the targets are raster_bilateral >= 0.75 (measured 0.963) and raster >= 0.60: with the paper's
# SGD raster measures 0.585 (the floor guards that), with Adam, which won on the tuning scenes, 0.603.
FLOORS = {
    "raster_bilateral": (["param=raster_bilateral"], 0.75),
    "raster_adam": (["param=raster", "optimizer=adam"], 0.60),
    "raster": (["param=raster"], 0.57),
}
GUIDANCE_ONE_CEILING = 0.2  # measured 0.000


def test_every_vocabulary_word_is_one_bpe_token():
    tokenizer = toy_tokenizer()
    for word in (*COLOURS, *SHAPES):
        assert tokenizer.tokenize(word) == [f"{word}</w>"]
    ids = tokenizer("red circle").input_ids
    assert ids == [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["red</w>", "circle</w>"]), 513]
    assert tokenizer.tokenize("a photo") == ["a</w>", "p", "h", "o", "t", "o</w>"]  # other text: bytes


def test_training_images_are_the_analytic_priors_classes():
    """Drawn from the analytic prior's distribution: the template classifier recovers every class, and captions
    name the class, its bare shape, or nothing in the configured proportions."""
    sampler = ToyImageSampler(bare_shape_fraction=0.2, empty_fraction=0.1)
    images, caption = sampler.sample(2000, torch.Generator().manual_seed(0))
    texts = [captions()[c] for c in caption]
    assert 0.08 < texts.count("") / 2000 < 0.12
    assert 0.17 < sum(t in SHAPES for t in texts) / 2000 < 0.23
    found = classify(images[:300])
    named = [(f.prompt, t) for f, t in zip(found, texts[:300], strict=True) if " " in t]
    assert [prompt for prompt, _ in named] == [t for _, t in named]
    bare = [(f.shape, t) for f, t in zip(found, texts[:300], strict=True) if t in SHAPES]
    assert len(bare) > 30 and all(shape == t for shape, t in bare)


def test_scene_label_maps_mark_target_and_distractors():
    scene = make_scene(3, distractors=2)
    assert set(scene.labels.ravel().tolist()) == {0, 1, 2, 3}
    assert ((scene.labels == 1) == (scene.mask == 1)).all()


def test_model_path_resolves_inside_the_package_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose(["model=toy_sd"])
    assert Path(cfg.model.path) == WEIGHTS_DIR
    assert {p.name for p in WEIGHTS_DIR.iterdir()} >= {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}
    size = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert size <= 20 * 2**20


@pytest.fixture(scope="module")
def toy_sd_prior():
    return build(compose(["model=toy_sd"]).model, device="cpu")


def test_shipped_weights_load_through_the_stable_diffusion_prior(toy_sd_prior):
    assert type(toy_sd_prior) is StableDiffusionPrior
    assert toy_sd_prior.latent_shape == (4, 8, 8) and toy_sd_prior.resolution == 32
    scheduler = json.loads((WEIGHTS_DIR / "scheduler" / "scheduler_config.json").read_text())
    schedule = (scheduler["beta_schedule"], scheduler["beta_start"], scheduler["beta_end"])
    assert schedule == ("scaled_linear", 0.00085, 0.012)
    embeddings = toy_sd_prior.embed_prompts(["red circle", "blue circle", ""])
    assert embeddings.shape == (3, 77, 64)
    assert (embeddings[0] - embeddings[1]).abs().max() > 1e-3


def test_shipped_weights_pass_a_short_sample_check():
    result = check(load_pipeline(WEIGHTS_DIR), per_class=1, steps=25)
    assert len(result.prompted) == len(CLASSES)
    found = [c.prompt for c in result.found]
    assert result.colour_accuracy >= FAST_CHECK_FLOORS["colour"], found
    assert result.accuracy >= FAST_CHECK_FLOORS["both"], found


@pytest.mark.slow
def test_shipped_weights_pass_the_full_sample_check():
    result = check(load_pipeline(WEIGHTS_DIR), per_class=8, steps=50, guidance_scale=7.5)
    assert result.colour_accuracy >= FULL_CHECK_FLOORS["colour"]
    assert result.accuracy >= FULL_CHECK_FLOORS["both"]


def test_check_prior_cli_prints_accuracy_and_writes_the_grid(tmp_path, capsys):
    from peekaboo.toy.check_prior import main

    accuracy = main(["--per-class", "1", "--steps", "10", "--grid", str(tmp_path / "grid.png")])
    assert f"accuracy: {accuracy:.3f}" in capsys.readouterr().out
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_training_writes_a_loadable_pipeline_with_logs_and_grids(tmp_path):
    """A few steps of both stages with a smaller UNet: SD's folder layout, loss curves, one grid per epoch."""
    from omegaconf import OmegaConf

    from peekaboo.config.store import register_configs
    from peekaboo.toy.learned.configs import TrainPriorConfig
    from peekaboo.toy.train_prior import train

    register_configs()
    cfg = OmegaConf.merge(
        OmegaConf.structured(TrainPriorConfig),
        {
            "logger": {"_target_": None},
            "output_dir": str(tmp_path),
            "vae": {"steps": 4, "epochs": 2, "batch_size": 4},
            "diffusion": {"steps": 4, "epochs": 2, "batch_size": 4, "grid_steps": 2, "warmup_steps": 1},
            "architecture": {"unet": {"block_out_channels": [16, 32]}},
        },
    )
    directory = train(cfg)
    assert {p.name for p in directory.iterdir()} >= {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "samples_epoch00.png", "samples_epoch01.png", "vae_epoch00.png", "vae_epoch01.png",
    ]
    losses = (tmp_path / "logs" / "diffusion" / "metrics.csv").read_text()
    assert "diffusion/loss" in losses
    prior = StableDiffusionPrior(str(directory), local_files_only=True, resolution=32)
    assert prior.latent_shape == (4, 8, 8)
    assert abs(prior.scaling_factor - 1.0) > 1e-6  # set from the trained VAE's latent spread


def peekaboo(tmp_path, *args):
    common = ["model=toy_sd", "data=toy", "trainer.enable_progress_bar=false", "contact_sheet=0"]
    result = run_cli([*common, *args, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_peekaboo_segments_through_the_learned_prior_on_a_few_scenes(tmp_path):
    metrics = peekaboo(tmp_path, "param=raster_bilateral", "data.num_scenes=4")
    assert metrics["n"] == 4 and metrics["mIoU"] >= FEW_SCENES_FLOOR, metrics


@pytest.mark.slow
@pytest.mark.parametrize("row", list(FLOORS))
def test_toy_sd_quality_floor(tmp_path, row):
    overrides, floor = FLOORS[row]
    metrics = peekaboo(tmp_path, *overrides)
    assert metrics["n"] == 16 and metrics["mIoU"] >= floor, metrics


@pytest.mark.slow
def test_without_guidance_the_learned_prior_fails_too(tmp_path):
    metrics = peekaboo(tmp_path, "param=raster_bilateral", "loss.sds.guidance_scale=1")
    assert metrics["n"] == 16 and metrics["mIoU"] < GUIDANCE_ONE_CEILING, metrics


def test_table_experiment_writes_one_row_and_contact_sheet_per_job(tmp_path):
    """experiment=toy_sd_table's renderer: Peekaboo scored by mIoU, DiffSeg by Hungarian mIoU, a sheet per row."""
    result = run_cli(
        [
            "experiment=toy_sd_table",
            "row=raster_bilateral_half,diffseg",
            "data.num_scenes=2",
            "schedule.iterations=2",
            "trainer.enable_progress_bar=false",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (tmp_path / "sweep" / "table.csv").read_text().splitlines()
    assert rows[0].startswith("row,metric,score")
    assert rows[1].startswith("raster_bilateral_half,mIoU,") and rows[2].startswith("diffseg,Hungarian mIoU,")
    sheets = sorted(p.name for p in (tmp_path / "sweep").glob("contact_sheet_*.png"))
    assert sheets == ["contact_sheet_diffseg.png", "contact_sheet_raster_bilateral_half.png"]


@pytest.mark.parametrize(("model", "working"), [("toy_sd", 32), ("sd15", 256), ("toy", 32)])
def test_a_users_image_is_segmented_at_the_models_working_resolution(model, working):
    """data=image/folder take model.working_resolution (toy_sd: its own 32, as its recipes were tuned), which is
    not a constructor argument of the prior."""
    for data in ("image", "folder"):
        cfg = compose([f"model={model}", f"data={data}"])
        assert cfg.data.resolution == working
    if model == "toy_sd":
        prior = build(cfg.model, device="cpu")
        assert prior.resolution == 32
