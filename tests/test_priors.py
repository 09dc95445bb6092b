"""Loading priors: the tiny pipeline is built once and loaded like real weights; missing weights explain themselves."""

import os

import pytest
import torch

from conftest import relative_error, run_cli
from peekaboo.errors import ModelLoadError
from peekaboo.priors.stable_diffusion import StableDiffusionPrior
from peekaboo.priors.tiny_sd import build_tiny_sd, tiny_sd_directory


def test_tiny_sd_is_built_once_and_loaded_through_from_pretrained(peekaboo_cache, tiny_prior):
    directory = tiny_sd_directory(str(peekaboo_cache), seed=0)
    assert sorted(p.name for p in directory.iterdir()) == [
        "model_index.json",
        "scheduler",
        "text_encoder",
        "tokenizer",
        "unet",
        "vae",
    ]
    stamp = (directory / "unet").stat().st_mtime_ns
    again = build_tiny_sd(seed=0, cache_dir=str(peekaboo_cache))
    assert (directory / "unet").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert isinstance(again, StableDiffusionPrior) and again.path == str(directory)
    assert again.latent_shape == (4, 8, 8)  # the real 8x VAE downsampling at 64 px
    for a, b in zip(again.unet.parameters(), tiny_prior.unet.parameters(), strict=True):
        assert torch.equal(a, b)  # seeded: the same weights every time
    tokens = again.tokenizer(["a red dog!"]).input_ids[0]
    assert tokens[0] == again.tokenizer.bos_token_id and tokens[-1] == again.tokenizer.eos_token_id


def test_missing_hub_weights_say_where_we_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        StableDiffusionPrior("CompVis/stable-diffusion-v1-4", cache_dir=str(tmp_path / "hub"))
    message = str(err.value)
    for expected in (
        "CompVis/stable-diffusion-v1-4",
        "model.path",
        str(tmp_path / "hub"),
        "offline",
        "hf download",
        "HF_HOME",
        "hf auth login",
    ):
        assert expected in message, expected


def test_local_directory_without_weights_lists_what_it_holds(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelLoadError, match=r"contains: unet\).*save_pretrained writes \(unet, vae, text_encoder"):
        StableDiffusionPrior(str(tmp_path))
    with pytest.raises(ModelLoadError, match="does not exist"):
        StableDiffusionPrior(str(tmp_path / "missing"))


def test_cli_stops_with_one_message_when_weights_are_missing(tmp_path):
    result = run_cli(
        [
            "model=sd14",
            "data.num_scenes=1",
            f"model.cache_dir={tmp_path}/hub",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert "could not load Stable Diffusion weights 'CompVis/stable-diffusion-v1-4'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "run").rglob("result.json"))
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # tests never reach the network


def test_vae_attention_is_explicit_for_bf16_on_cpu_and_gives_the_same_gradient(tiny_prior, peekaboo_cache):
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    def processors(prior):
        return {type(p) for p in prior.vae.attn_processors.values()}

    assert processors(tiny_prior) == {AttnProcessor2_0}  # fp32: level on a CPU, fused SDPA kept
    prior = build_tiny_sd(seed=0, cache_dir=str(peekaboo_cache), dtype="bf16", channels_last=True)
    assert processors(prior) == {AttnProcessor}

    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    def encode_gradient(on):
        x = images.clone().requires_grad_(True)
        on.encode(x).mean.square().sum().backward()
        return x.grad

    exact = encode_gradient(tiny_prior)  # fp32, same weights
    explicit = relative_error(encode_gradient(prior), exact)
    prior.vae.set_attn_processor(AttnProcessor2_0())
    fused = relative_error(encode_gradient(prior), exact)
    assert explicit < 1.25 * fused  # both are bf16's rounding through the encoder; the attention adds nothing
