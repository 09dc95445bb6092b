"""Schemas of the ``model`` group (Stable Diffusion, tiny_sd, the toy world).

Torch-free on purpose: the config store imports every schema, and ``run.py --help`` and tab completion
must not pay for torch or lightning. Each schema's ``_target_`` names the class that does the work."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peekaboo.toy.vocabulary import ToyDistribution

if TYPE_CHECKING:
    import torch


class Precision(enum.Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.value]


class Attention(enum.Enum):
    """The UNet's attention processor (the VAE's is chosen by ``vae_attention``)."""

    auto = "auto"  # SDPA, except bf16 inference on a CPU with AVX512-BF16 and without AMX: ``BlockedAttention``
    sdpa = "sdpa"  # torch's scaled_dot_product_attention everywhere
    default = "default"  # whatever diffusers installed


@dataclass
class StableDiffusionConfig:
    """Schema of ``model=sd14|sd15|sd21_base`` (and the base of ``model=tiny_sd``)."""

    _target_: str = "peekaboo.priors.stable_diffusion.StableDiffusionPrior"
    name: str = "sd15"
    path: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # hub id or local directory
    revision: str | None = None
    variant: str | None = None  # e.g. "fp16" to download half-precision files
    cache_dir: str | None = None  # None: the Hugging Face cache (HF_HOME / HF_HUB_CACHE)
    local_files_only: bool = False  # also forced by HF_HUB_OFFLINE=1
    dtype: Precision = Precision.fp32  # compute dtype of the frozen networks; optimised parameters stay fp32
    channels_last: bool = False
    attention: Attention = Attention.auto  # the UNet's attention processor (see Attention)
    compile: bool = False  # torch.compile the UNet
    resolution: int = 512  # pixel size the VAE encodes (composites are resized to it)
    # working resolution that data=image/folder give a user's image (the mask's size; the paper's 256 for SD)
    working_resolution: int = 256


@dataclass
class TinySDConfig(StableDiffusionConfig):
    """Schema of ``model=tiny_sd``: ``path`` is ignored; the pipeline is built under ``cache_dir``."""

    _target_: str = "peekaboo.priors.tiny_sd.build_tiny_sd"
    name: str = "tiny_sd"
    path: str = ""
    cache_dir: str | None = None  # None: $PEEKABOO_CACHE or ~/.cache/peekaboo
    local_files_only: bool = True
    resolution: int = 64
    seed: int = 0


@dataclass
class ToyPriorConfig(ToyDistribution):
    """Schema of ``model=toy``: the distribution's parameters (sf, sg, sn, colour_scale) and the templates."""

    _target_: str = "peekaboo.priors.toy.ToyPrior"
    name: str = "toy"
    size: int = 32  # must equal the scenes' size (conf/model/toy.yaml follows data.size)
