"""Text-to-image sampling from the toy SD with diffusers' own pipeline (DDIM, classifier-free guidance)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def pipeline(unet, vae, text_encoder, tokenizer, scheduler, ddim: bool = True):
    """A ``StableDiffusionPipeline`` over the networks (no safety checker); ``ddim``: sampling with SD's DDIM
    settings instead of ``scheduler`` itself (which is what ``save_pretrained`` should keep)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    if ddim:
        scheduler = DDIMScheduler.from_config(scheduler.config, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pipeline(path: str | Path, device: str = "cpu"):
    """The saved toy SD as a DDIM pipeline."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    return pipeline(
        UNet2DConditionModel.from_pretrained(path, subfolder="unet"),
        AutoencoderKL.from_pretrained(path, subfolder="vae"),
        CLIPTextModel.from_pretrained(path, subfolder="text_encoder"),
        CLIPTokenizer.from_pretrained(path, subfolder="tokenizer"),
        DDPMScheduler.from_pretrained(path, subfolder="scheduler"),
    ).to(device)


@torch.no_grad()
def generate(pipe, prompts: list[str], seeds: list[int], steps: int = 50, guidance_scale: float = 7.5) -> torch.Tensor:
    """Images (N, 3, H, W) in [-1, 1]; sample i starts from the noise of ``seeds[i]`` whatever the batch."""
    generators = [torch.Generator(pipe.device).manual_seed(int(s)) for s in seeds]
    images = pipe(
        list(prompts),
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=generators,
        output_type="pt",
    ).images
    return images * 2 - 1


def save_grid(images: torch.Tensor, columns: int, path: str | Path, scale: int = 2) -> None:
    """Images (N, 3, H, W) in [-1, 1] as one PNG, ``columns`` per row, each enlarged ``scale`` times."""
    from peekaboo.io.atomic import write_bytes

    n, _, h, w = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + 1), columns * (w + 1), 3), 255, np.uint8)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    picture = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())
