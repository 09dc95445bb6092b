"""Model set-up fails fast and says why; prompts the text encoder cannot read whole are reported once."""

from __future__ import annotations

import logging
import time

import pytest
from transformers import CLIPTokenizer

from peekaboo.errors import ModelLoadError
from peekaboo.priors import hub
from peekaboo.priors.stable_diffusion import StableDiffusionPrior


def test_a_long_prompt_warns_once_naming_it(tiny_prior, caplog):
    long = "a dog " * 20  # the tiny tokenizer reads bytes: 120 tokens + start and end > 77
    with caplog.at_level(logging.WARNING, logger="peekaboo"):
        tiny_prior.embed_prompts(["a cat", long])
        tiny_prior.embed_prompts([long])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # once, and not also the tokenizer's own warning
    assert warnings[0].startswith(f"prompt {long!r} is ")
    assert warnings[0].endswith(" tokens long; the text encoder reads only the first 77, the rest is ignored")
    assert int(warnings[0].split(" is ")[1].split()[0]) > 77


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries to load weights (it must be decided before)."""

    def refuse(*args, **kwargs):
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(CLIPTokenizer, "from_pretrained", refuse)


def test_missing_weights_offline_fail_at_once_without_loading(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        StableDiffusionPrior("nobody/no-such-model", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 5
    assert str(err.value).startswith(
        f"could not load Stable Diffusion weights 'nobody/no-such-model' (model.path). Looked in the Hugging Face "
        f"cache {tmp_path} only (offline"
    )
    assert "Cause: FileNotFoundError: unet/config.json of 'nobody/no-such-model' is not in the cache" in str(err.value)


def test_missing_weights_online_are_one_short_hub_question(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked = []

    def unreachable(self, repo_id, revision=None, timeout=None, **kwargs):
        asked.append((repo_id, timeout))
        raise ConnectionError("network unreachable")

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", unreachable)
    with pytest.raises(
        ModelLoadError,
        match=r"Cause: OSError: the hub did not provide 'nobody/no-such-model' "
        r"\(ConnectionError: network unreachable\)",
    ):
        StableDiffusionPrior("nobody/no-such-model", cache_dir=str(tmp_path))
    assert asked == [("nobody/no-such-model", hub.HUB_TIMEOUT)]
