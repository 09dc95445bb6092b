"""Stable Diffusion (1.x / 2.x) through diffusers, loaded component by component with ``from_pretrained``.

The same loader serves hub ids, local directories (``model.path=/dir``) and the tiny random pipeline that
tests build on disk, so the real-weights path is the tested path.
"""

from __future__ import annotations

import logging

import torch

from peekaboo.priors.base import DiffusionPrior, LatentDistribution
from peekaboo.priors.channels_last_norm import use_channels_last_group_norm
from peekaboo.priors.configs import Attention, Precision
from peekaboo.priors.cpu_attention import BlockedAttention, blocked_attention_pays
from peekaboo.priors.hub import load_pretrained

log = logging.getLogger("peekaboo")


def unet_attention(choice: Attention, device: torch.device, dtype: torch.dtype, compiled: bool):
    """The processor ``choice`` gives on this device and dtype; None leaves diffusers' own.

    ``auto`` keeps SDPA under ``torch.compile``, which would unroll the blocked loops into its graph.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    if choice is Attention.default:
        return None
    if choice is Attention.auto and not compiled and blocked_attention_pays(device, dtype):
        return BlockedAttention()
    return AttnProcessor2_0()


_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def warn_truncated(tokenizer, prompts: list[str], warned: set[str]) -> None:
    """Warn once per prompt (``warned`` remembers) that is longer than a CLIP text encoder reads (77 tokens): the
    tokenizer truncates it, so the rest of the prompt has no effect."""
    limit = tokenizer.model_max_length
    for prompt, ids in zip(prompts, tokenizer(list(prompts), verbose=False).input_ids, strict=True):
        if len(ids) > limit and prompt not in warned:
            warned.add(prompt)
            log.warning(
                "prompt %r is %d tokens long; the text encoder reads only the first %d, the rest is ignored",
                prompt,
                len(ids),
                limit,
            )


def vae_attention(device: torch.device, dtype: torch.dtype):
    """The VAE's attention processor: explicit matrix products for bf16 on a CPU, fused SDPA elsewhere.

    The encoder's one attention layer (4096 tokens of 512 channels at 512 px) takes the gradient every
    iteration; on a CPU, bf16 matrix products beat SDPA's flash kernel there, while in fp32 the two are level
    (docs/performance.md).
    """
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    return AttnProcessor() if device.type == "cpu" and dtype == torch.bfloat16 else AttnProcessor2_0()


def install_attention(module, processor) -> None:
    """Put ``processor`` on every attention layer of ``module`` unless that type is already on all of them (None:
    leave them): moving a prior then keeps its processors, and a compiled UNet is not recompiled for new objects."""
    if processor is not None and {type(p) for p in module.attn_processors.values()} != {type(processor)}:
        module.set_attn_processor(processor)


class StableDiffusionPrior(DiffusionPrior):
    """VAE + CLIP text encoder + UNet + DDPM schedule of a Stable Diffusion checkpoint, frozen."""

    def __init__(
        self,
        path: str,
        revision: str | None = None,
        variant: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        dtype: Precision | str = Precision.fp32,
        channels_last: bool = False,
        attention: Attention | str = Attention.auto,
        compile: bool = False,
        resolution: int = 512,
        device: str | torch.device = "cpu",
    ):
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        precision = Precision(dtype.value if isinstance(dtype, Precision) else dtype)

        def load(local_only: bool):
            kwargs = {"cache_dir": cache_dir, "local_files_only": local_only, "revision": revision}
            tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", **kwargs)
            text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", **kwargs)
            vae = AutoencoderKL.from_pretrained(
                path, subfolder="vae", variant=variant, torch_dtype=precision.dtype, **kwargs
            )
            unet = UNet2DConditionModel.from_pretrained(
                path, subfolder="unet", variant=variant, torch_dtype=precision.dtype, **kwargs
            )
            return (
                tokenizer,
                text_encoder,
                vae,
                unet,
                DDPMScheduler.from_pretrained(path, subfolder="scheduler", **kwargs),
            )

        self.tokenizer, self.text_encoder, self.vae, self.unet, scheduler = load_pretrained(
            load,
            what="Stable Diffusion weights",
            path=path,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            probe="unet/config.json",
            files=_SUBFOLDERS,
        )
        self._assemble(path, scheduler.alphas_cumprod, precision, channels_last, attention, compile, resolution, device)

    @classmethod
    def from_modules(
        cls,
        unet,
        vae,
        alphas_cumprod: torch.Tensor,
        text_encoder=None,
        tokenizer=None,
        dtype: Precision | str = Precision.fp32,
        channels_last: bool = False,
        attention: Attention | str = Attention.auto,
        compile: bool = False,
        resolution: int = 512,
        device: str | torch.device = "cpu",
    ) -> StableDiffusionPrior:
        """Wrap networks already in memory (e.g. a diffusers pipeline's, or SD-sized random ones for benchmarks).

        Without a text encoder and tokenizer, ``embed_prompts`` is unavailable: pass embeddings directly."""
        precision = Precision(getattr(dtype, "value", dtype))
        self = cls.__new__(cls)
        self.unet, self.vae = unet.to(precision.dtype), vae.to(precision.dtype)
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self._assemble("<modules>", alphas_cumprod, precision, channels_last, attention, compile, resolution, device)
        return self

    def _assemble(
        self,
        path: str,
        alphas_cumprod: torch.Tensor,
        precision: Precision,
        channels_last: bool,
        attention: Attention | str,
        compile: bool,
        resolution: int,
        device: str | torch.device,
    ) -> None:
        """Everything after loading: shapes, schedule, attention processors, frozen eval mode, memory format."""
        self.path = path
        self.warned_prompts: set[str] = set()
        self.dtype = precision.dtype
        self.device = torch.device(device)
        self.resolution = resolution
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.latent_shape = (self.vae.config.latent_channels, resolution // factor, resolution // factor)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.alphas_cumprod = alphas_cumprod.to(torch.float32)
        try:
            self.attention = Attention(getattr(attention, "value", attention))
        except ValueError:
            choices = ", ".join(a.value for a in Attention)
            raise ValueError(f"model.attention must be one of {choices}, got {attention!r}") from None
        self.compiled = compile
        for module in (self.text_encoder, self.vae, self.unet):
            if module is not None:
                module.requires_grad_(False).eval()
        self.channels_last = channels_last
        if channels_last:  # the VAE encoder is the only network peekaboo backpropagates through
            use_channels_last_group_norm(self.vae)
        self.to(self.device)
        if compile:
            self.unet = torch.compile(self.unet)

    def to(self, device: torch.device | str) -> StableDiffusionPrior:
        super().to(device)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.text_encoder is not None:
            self.text_encoder.to(self.device)
        self.vae.to(self.device, memory_format=memory_format)  # already in self.dtype (loaded with torch_dtype)
        self.unet.to(self.device, memory_format=memory_format)
        install_attention(self.vae, vae_attention(self.device, self.dtype))
        install_attention(self.unet, unet_attention(self.attention, self.device, self.dtype, self.compiled))
        return self

    def encode(self, images: torch.Tensor) -> LatentDistribution:
        x = (2 * images - 1).to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        posterior = self.vae.encode(x).latent_dist
        return LatentDistribution(
            posterior.mean.float() * self.scaling_factor, posterior.std.float() * self.scaling_factor
        )

    @torch.no_grad()
    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError("this prior was built from modules without a text encoder: pass prompt embeddings")
        warn_truncated(self.tokenizer, prompts, self.warned_prompts)
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        hidden = self.text_encoder(tokens.input_ids.to(self.device))[0]
        return hidden.to(self.dtype)

    @torch.no_grad()
    def predict_noise(self, noisy: torch.Tensor, timesteps: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        x = noisy.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.unet(x, timesteps, encoder_hidden_states=embeddings.to(self.dtype)).sample.float()
