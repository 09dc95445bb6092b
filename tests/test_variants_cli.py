"""The variants through run.py as a user types them: CLIP and depth presets, several prompts, clear load errors."""

import json

import pytest
from PIL import Image

from conftest import run_cli


@pytest.fixture(scope="module")
def image_file(dog_image):
    return dog_image / "dog.png"


def test_sds_clip_depth_and_two_prompts_in_one_run(image_file, tmp_path, peekaboo_cache):
    maps = tmp_path / "depth_maps"
    args = [
        "model=tiny_sd",
        "data=image",
        f"data.path={image_file}",
        "data.prompt=[a dog,a couch]",
        "data.resolution=32",
        "loss=sds_clip",
        "loss.clip.tiny=true",
        "guidance_map=depth",
        "guidance_map.tiny=true",
        f"guidance_map.maps_dir={maps}",
        "schedule.iterations=2",
        "schedule.timelapse_every=1",
        "trainer.enable_progress_bar=false",
    ]
    result = run_cli([*args, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    item = tmp_path / "run" / "items" / "dog"
    record = json.loads((item / "result.json").read_text())
    assert record["prompts"] == ["a dog", "a couch"]
    assert record["variant"]["loss"] == "sds_clip" and record["variant"]["guidance_map"] == "depth"
    for entry, slug in zip(record["results"], ("00_a_dog", "01_a_couch"), strict=True):
        assert entry["dir"] == f"prompts/{slug}"
        assert {"sds", "clip_logit", "alpha_mean"} <= set(entry["final"])
        assert (item / entry["dir"] / "alpha.npy").is_file() and (item / entry["dir"] / "overlay.png").is_file()
    assert Image.open(item / "overlay.png").size == (48, 48)  # the centre crop of the 64x48 image
    assert len(list(maps.glob("*.npy"))) == 1  # one image: one depth map, shared by both prompts


def test_clip_alone_does_not_load_the_diffusion_prior(image_file, tmp_path, peekaboo_cache):
    """loss=clip on the default (toy) model: "a dog" is outside the toy vocabulary, so loading the prior's
    embeddings would fail; CLIP alone runs."""
    result = run_cli(
        [
            "data=image",
            f"data.path={image_file}",
            "data.prompt=a dog",
            "data.resolution=32",
            "loss=clip",
            "loss.clip.tiny=true",
            "schedule.iterations=2",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "items" / "dog" / "result.json").read_text())
    assert set(record["results"][0]["final"]) == {"clip_logit", "alpha_mean"}


def test_missing_clip_weights_stop_the_run_with_one_message(image_file, tmp_path):
    result = run_cli(
        [
            "data=image",
            f"data.path={image_file}",
            "data.prompt=a dog",
            "loss=clip",
            f"loss.clip.path={tmp_path}/missing_clip",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "loss.clip.path" in result.stderr and "missing_clip" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run" / "items").exists()
