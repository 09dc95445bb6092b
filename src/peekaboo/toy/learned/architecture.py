"""The toy SD's networks, built from configs with the very classes Stable Diffusion uses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VAEArchitecture:
    """``AutoencoderKL``: len(block_out_channels) - 1 halvings (3 blocks: 32 x 32 pixels -> 8 x 8 latents)."""

    block_out_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_num_groups: int = 8


@dataclass
class UNetArchitecture:
    """``UNet2DConditionModel`` with cross-attention down/up blocks and an attention mid block."""

    block_out_channels: list[int] = field(default_factory=lambda: [32, 64])
    layers_per_block: int = 1
    attention_head_dim: int = 8
    norm_num_groups: int = 8


@dataclass
class TextArchitecture:
    """``CLIPTextModel``; its width is the UNet's cross-attention dimension."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4


@dataclass
class Architecture:
    vae: VAEArchitecture = field(default_factory=VAEArchitecture)
    unet: UNetArchitecture = field(default_factory=UNetArchitecture)
    text: TextArchitecture = field(default_factory=TextArchitecture)


def build_vae(arch: VAEArchitecture, size: int):
    from diffusers import AutoencoderKL

    blocks = len(arch.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=arch.latent_channels,
        layers_per_block=arch.layers_per_block,
        norm_num_groups=arch.norm_num_groups,
        block_out_channels=tuple(arch.block_out_channels),
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        sample_size=size,
    )


def build_unet(arch: UNetArchitecture, latent_size: int, latent_channels: int, cross_attention_dim: int):
    from diffusers import UNet2DConditionModel

    blocks = len(arch.block_out_channels)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        layers_per_block=arch.layers_per_block,
        block_out_channels=tuple(arch.block_out_channels),
        down_block_types=("CrossAttnDownBlock2D",) * blocks,
        up_block_types=("CrossAttnUpBlock2D",) * blocks,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=arch.attention_head_dim,
        norm_num_groups=arch.norm_num_groups,
    )


def build_text_encoder(arch: TextArchitecture, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    vocab = tokenizer.get_vocab()
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=arch.hidden_size,
            intermediate_size=arch.intermediate_size,
            num_hidden_layers=arch.num_hidden_layers,
            num_attention_heads=arch.num_attention_heads,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            projection_dim=arch.hidden_size,
        )
    )


def build_scheduler():
    """SD's training schedule: scaled_linear 0.00085..0.012 over 1000 steps, epsilon prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        prediction_type="epsilon",
        steps_offset=1,
    )
