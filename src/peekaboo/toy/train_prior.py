"""``make train-prior``: train the toy SD (``model=toy_sd``) on the analytic toy world's image distribution.

``python -m peekaboo.toy.train_prior [key=value ...]`` (config: ``conf/train_prior.yaml``). Stage 1 fits the VAE,
stage 2 the UNet and text encoder on its latents; both are Lightning ``fit`` runs with a CSV loss log (W&B with
``logger=wandb``) and a grid PNG per epoch. The pipeline is saved with ``save_pretrained`` in SD's folder layout
under ``<output_dir>/pipeline``; ``install=true`` also copies it over the shipped weights.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import hydra
import torch
from lightning import Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from peekaboo.config.build import build
from peekaboo.config.compose import CONF
from peekaboo.config.store import register_configs
from peekaboo.toy.learned import WEIGHTS_DIR
from peekaboo.toy.learned.architecture import build_scheduler, build_text_encoder, build_unet, build_vae
from peekaboo.toy.learned.images import ToyImageSampler
from peekaboo.toy.learned.sampling import load_pipeline, pipeline
from peekaboo.toy.learned.tokenizer import toy_tokenizer
from peekaboo.toy.learned.training import DiffusionModule, ImageBatches, ReconstructionGrid, SamplesGrid, VAEModule
from peekaboo.toy.vocabulary import ToyDistribution

GRID_SEEDS = [0, 1]


def _trainer(cfg: DictConfig, stage: str, steps: int, epochs: int, output: Path, callbacks: list) -> Trainer:
    loggers = [CSVLogger(output, name="logs", version=stage)]
    if cfg.logger.get("_target_"):
        loggers.append(build(cfg.logger, save_dir=str(output)))
    return Trainer(
        accelerator="cpu",
        max_steps=steps,
        max_epochs=epochs,
        logger=loggers,
        callbacks=callbacks,
        enable_checkpointing=False,
        log_every_n_steps=max(1, min(10, steps // epochs)),
        enable_model_summary=False,
    )


def _batches(sampler: ToyImageSampler, batch_size: int, steps: int, epochs: int, seed: int) -> ImageBatches:
    return ImageBatches(sampler, batch_size, -(-steps // epochs), seed)


def train(cfg: DictConfig) -> Path:
    """Both stages; returns the saved pipeline's directory."""
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed, verbose=False)
    output = Path(cfg.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    arch, data = cfg.architecture, cfg.data
    distribution = ToyDistribution(data.sf, data.sg, data.sn, data.colour_scale)
    sampler = ToyImageSampler(distribution, data.size, data.bare_shape_fraction, data.empty_fraction)
    if cfg.init:
        pipe = load_pipeline(cfg.init)
        unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
        unet.train(), vae.train(), text_encoder.train()
    else:
        tokenizer = toy_tokenizer()
        vae = build_vae(arch.vae, data.size)
        text_encoder = build_text_encoder(arch.text, tokenizer)
        latent_size = data.size // 2 ** (len(arch.vae.block_out_channels) - 1)
        unet = build_unet(arch.unet, latent_size, arch.vae.latent_channels, arch.text.hidden_size)
    scheduler = build_scheduler()
    started = time.perf_counter()

    stage = cfg.vae
    if stage.steps > 0:
        shown = sampler.sample(12, torch.Generator().manual_seed(cfg.seed + 1000))[0]
        _trainer(cfg, "vae", stage.steps, stage.epochs, output, [ReconstructionGrid(shown, output)]).fit(
            VAEModule(vae, stage.lr, stage.kl_weight, stage.warmup_steps, stage.steps),
            _batches(sampler, stage.batch_size, stage.steps, stage.epochs, cfg.seed),
        )
        with torch.no_grad():  # unit-variance latents, as SD's 0.18215 gives for its VAE
            images = sampler.sample(1024, torch.Generator().manual_seed(cfg.seed + 2000))[0]
            std = vae.eval().encode(images).latent_dist.mean.std().item()
        vae.register_to_config(scaling_factor=1.0 / std)
    vae_seconds = time.perf_counter() - started

    stage = cfg.diffusion
    grid = SamplesGrid(output, GRID_SEEDS, stage.grid_steps, stage.guidance_scale)
    module = DiffusionModule(unet, text_encoder, vae, tokenizer, scheduler, stage.lr, stage.warmup_steps, stage.steps)
    _trainer(cfg, "diffusion", stage.steps, stage.epochs, output, [grid]).fit(
        module, _batches(sampler, stage.batch_size, stage.steps, stage.epochs, cfg.seed + 1)
    )
    total = time.perf_counter() - started
    directory = output / "pipeline"
    pipeline(unet.eval(), vae, text_encoder.eval(), tokenizer, scheduler, ddim=False).save_pretrained(directory)
    print(f"trained in {total / 60:.1f} min (VAE {vae_seconds / 60:.1f} min); saved {directory}")
    if cfg.install:
        shutil.rmtree(WEIGHTS_DIR, ignore_errors=True)
        shutil.copytree(directory, WEIGHTS_DIR)
        print(f"installed as the shipped weights: {WEIGHTS_DIR}")
    return directory


register_configs()


@hydra.main(config_path=str(CONF), config_name="train_prior", version_base="1.3")
def main(cfg: DictConfig) -> None:
    OmegaConf.resolve(cfg)
    train(cfg)


if __name__ == "__main__":
    main()
