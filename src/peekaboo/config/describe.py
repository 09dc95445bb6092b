"""What a run says when it starts: the model in use (so nobody mistakes the toy world for Stable Diffusion) and
how long each item is optimised and in batches of how many (presets set them; a model's tuning may change the
values they read, ``param.recipe``)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from peekaboo.priors.configs import TinySDConfig, ToyPriorConfig

PICK_SD = "for real images pick Stable Diffusion: model=sd15 (or sd14, sd21_base; model.path=<folder>: local weights)"


def describe_model(cfg: DictConfig) -> str:
    """``model: ...`` for the start of a run: the preset, what it is, and for the toy world how to pick SD."""
    target = OmegaConf.select(cfg, "model._target_")
    method = OmegaConf.select(cfg, "method.name")
    prefix = f"method: {method}, " if method != "peekaboo" else ""
    if method == "peekaboo" and OmegaConf.select(cfg, "loss.sds") is None:
        return f"{prefix}model: none (loss={cfg.loss.name}: CLIP scores the composites; no diffusion prior is loaded)"
    if target == ToyPriorConfig._target_:
        return (
            f"{prefix}model: the toy world (model=toy, the default): an analytic diffusion prior of coloured shapes at "
            f"{cfg.model.size}x{cfg.model.size} that knows prompts like 'red circle'; {PICK_SD}"
        )
    if target == TinySDConfig._target_:
        return f"{prefix}model: tiny_sd, a tiny random SD pipeline for offline plumbing checks (its masks mean nothing)"
    dtype = OmegaConf.select(cfg, "model.dtype")
    return f"{prefix}model: {cfg.model.name} ({cfg.model.path}, {getattr(dtype, 'value', dtype)})"


def describe_schedule(cfg: DictConfig) -> str:
    """``<N> iterations per item, <B> items per batch``: the values in effect after presets, tuning and the command
    line."""
    iterations = OmegaConf.select(cfg, "schedule.iterations")
    return f"schedule: {iterations} iterations per item, {cfg.trainer.batch_size} items per batch"
