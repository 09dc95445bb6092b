"""CLIP guidance: the paper's "CLIP" variant, ``loss = -clip_coef * logit(composite, prompt)`` per sample.

The composite is resized differentiably (bilinear, antialiased) to the vision model's input size and normalised
with the checkpoint's mean and std, as the authors' code did by hand around ``CLIPProcessor`` (whose PIL round
trip drops gradients); the logit is CLIP's ``logits_per_image`` for the matching prompt, i.e.
``exp(logit_scale) * cos(image_embeds, text_embeds)``. Gradients flow through the frozen vision tower to the
composite; text embeddings are computed once per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from peekaboo.embedding_cache import EmbeddingCache
from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import Composites
from peekaboo.guidance.term import GuidanceTerm, TermOutput
from peekaboo.priors.configs import Precision
from peekaboo.priors.hub import load_pretrained
from peekaboo.priors.stable_diffusion import warn_truncated
from peekaboo.schedules import Iterations, Schedule
from peekaboo.tiny import byte_tokenizer, cached_build, save_image_processor_config

# OpenAI CLIP's normalisation, used when a checkpoint ships no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_FILES = ("config.json", "model.safetensors", "tokenizer files", "preprocessor_config.json")


@dataclass
class ClipOutput:
    loss: torch.Tensor  # (S,) -clip_coef * logit
    logit: torch.Tensor  # (S,) detached, for logging


class ClipGuidance(GuidanceTerm):
    """A frozen CLIP scoring composites against per-sample text embeddings (from :meth:`embed`)."""

    def __init__(
        self,
        path: str = "openai/clip-vit-base-patch32",
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        dtype: Precision | str = Precision.fp32,
        clip_coef: Any = 500.0,
        tiny: bool = False,
        device: torch.device | str = "cpu",
        key: str = "loss.clip",
    ):
        from transformers import CLIPModel, CLIPTokenizer
        from transformers.image_processing_base import ImageProcessingMixin

        if tiny:
            path, cache_dir, local_files_only = str(tiny_clip_directory()), None, True

        def load(local_only: bool):
            kwargs = {"cache_dir": cache_dir, "local_files_only": local_only, "revision": revision}
            model, tokenizer = CLIPModel.from_pretrained(path, **kwargs), CLIPTokenizer.from_pretrained(path, **kwargs)
            return model, tokenizer, ImageProcessingMixin.get_image_processor_dict(path, **kwargs)[0]

        self.model, self.tokenizer, processor = load_pretrained(
            load,
            what="CLIP",
            path=path,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            probe="config.json",
            files=_FILES,
            key=f"{key}.path",
        )
        self.path = path
        self.warned_prompts: set[str] = set()
        self.device = torch.device(device)
        self.dtype = Precision(getattr(dtype, "value", dtype)).dtype
        self.model.requires_grad_(False).eval().to(self.device, self.dtype)
        self.clip_coef = Schedule.parse(clip_coef, f"{key}.clip_coef")
        self.size = int(self.model.config.vision_config.image_size)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(processor.get("image_mean", CLIP_MEAN), device=self.device).view(shape)
        self.std = torch.tensor(processor.get("image_std", CLIP_STD), device=self.device).view(shape)
        self.embed = EmbeddingCache(self._encode_text)

    @torch.no_grad()
    def _encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Unit-norm text embeddings (N, D) float32 (``embed`` caches them per prompt)."""
        warn_truncated(self.tokenizer, prompts, self.warned_prompts)
        tokens = self.tokenizer(prompts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        pooled = self.model.text_model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        return F.normalize(self.model.text_projection(pooled.pooler_output).float(), dim=-1)

    def logits(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """CLIP's logits_per_image of each image (S, 3, H, W) in [0, 1] with its own text embedding (S, D)."""
        x = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        x = ((x - self.mean) / self.std).to(self.dtype)
        pooled = self.model.vision_model(pixel_values=x).pooler_output
        features = F.normalize(self.model.visual_projection(pooled).float(), dim=-1)
        return self.model.logit_scale.exp().float() * (features * text).sum(-1)

    def __call__(
        self, images: torch.Tensor, text: torch.Tensor, iteration: Iterations, counts: Sequence[int] | None = None
    ) -> ClipOutput:
        """``iteration``: one for all images, or each unit's own with ``counts`` (images per unit)."""
        logit = self.logits(images, text)
        return ClipOutput(loss=-self.clip_coef.at(iteration, logit, counts) * logit, logit=logit.detach())

    def conditioning(self, prompts: list[str]) -> tuple[torch.Tensor, None]:
        return self.embed(prompts), None

    def score(
        self,
        composites: Composites,
        cond: torch.Tensor,
        shared: torch.Tensor | None,
        rng: UnitRandom,
        counts: Sequence[int],
        iteration: Iterations,
    ) -> TermOutput:
        out = self(composites.images, cond, iteration, counts)
        return TermOutput(out.loss, means={"clip_logit": out.logit})

    @classmethod
    def check_config(cls, cfg: DictConfig, key: str) -> None:
        Schedule.parse(OmegaConf.select(cfg, f"{key}.clip_coef"), f"{key}.clip_coef")


TINY_CLIP_VERSION = 1


def _build_tiny_clip(directory: Path) -> None:
    """A 2-layer CLIP (32-pixel images, 8-pixel patches) with the byte-level tokenizer."""
    from transformers import CLIPConfig, CLIPModel

    tokenizer = byte_tokenizer()
    vocab = tokenizer.get_vocab()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
        projection_dim=16,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CLIPModel(config)
    tokenizer.save_pretrained(directory)
    save_image_processor_config(directory, "CLIPImageProcessor", size=32, mean=CLIP_MEAN, std=CLIP_STD)
    model.save_pretrained(directory)


def tiny_clip_directory(cache_dir: str | None = None) -> Path:
    """The tiny CLIP's directory under ``$PEEKABOO_CACHE``, built there first if needed."""
    return cached_build("tiny_clip", {"version": TINY_CLIP_VERSION}, _build_tiny_clip, "config.json", cache_dir)
