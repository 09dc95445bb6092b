"""A randomly initialised, tiny Stable Diffusion pipeline built from configs: the offline plumbing check.

Built once per (architecture, seed), saved with ``save_pretrained`` under ``model.cache_dir`` and then loaded
by ``StableDiffusionPrior`` through the very same ``from_pretrained`` calls as real weights. The VAE keeps
SD's 8x downsampling and 4 latent channels; the UNet keeps SD's block types (cross-attention down/up blocks
and an attention mid block); the tokenizer is a real CLIP byte-level BPE tokenizer with a byte vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from peekaboo.priors.configs import Precision
from peekaboo.priors.stable_diffusion import StableDiffusionPrior
from peekaboo.tiny import byte_tokenizer, cached_build

ARCHITECTURE_VERSION = 1


def _build(directory: Path, seed: int) -> None:
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from peekaboo.toy.learned.architecture import TextArchitecture, VAEArchitecture, build_text_encoder, build_vae

    tokenizer = byte_tokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        text = TextArchitecture(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        text_encoder = build_text_encoder(text, tokenizer)
        vae = build_vae(VAEArchitecture(block_out_channels=[8, 16, 32, 32], norm_num_groups=8), size=64)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=16,
        )
    scheduler = DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, clip_sample=False
    )
    tokenizer.save_pretrained(directory / "tokenizer")
    text_encoder.save_pretrained(directory / "text_encoder")
    vae.save_pretrained(directory / "vae")
    unet.save_pretrained(directory / "unet")
    scheduler.save_pretrained(directory / "scheduler")
    (directory / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline", "seed": seed}))


def tiny_sd_directory(cache_dir: str | None, seed: int) -> Path:
    """Where the pipeline for ``seed`` lives; building it there first if it is not complete yet."""
    return cached_build(
        "tiny_sd",
        {"version": ARCHITECTURE_VERSION, "seed": seed},
        lambda directory: _build(directory, seed),
        marker="model_index.json",
        cache_dir=cache_dir,
    )


def build_tiny_sd(
    seed: int = 0,
    cache_dir: str | None = None,
    resolution: int = 64,
    dtype: Precision | str = Precision.fp32,
    device: str | torch.device = "cpu",
    **kwargs,
) -> StableDiffusionPrior:
    """Build (or reuse) the tiny pipeline on disk and load it like real weights."""
    kwargs.pop("path", None)
    kwargs.pop("local_files_only", None)
    directory = tiny_sd_directory(cache_dir, seed)
    return StableDiffusionPrior(
        path=str(directory),
        cache_dir=None,
        local_files_only=True,
        resolution=resolution,
        dtype=dtype,
        device=device,
        **kwargs,
    )
