"""Start-up checks the schemas cannot express: schedules, ranges and cross-field constraints.

Each failure is a ``ConfigError`` naming the full key, raised before any model or dataset is loaded.
"""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from peekaboo.errors import ConfigError
from peekaboo.priors.toy import ToyPriorConfig
from peekaboo.schedules import Schedule


def _positive(cfg: DictConfig, key: str, minimum: float = 1) -> None:
    value = OmegaConf.select(cfg, key)
    if value is not None and value < minimum:
        raise ConfigError(key, f"must be >= {minimum}, got {value}")


def validate(cfg: DictConfig) -> None:
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(err.full_key, "is required but missing (???): set it on the command line") from err

    _validate_method(cfg)
    Schedule.parse(cfg.loss.lambda_alpha, "loss.lambda_alpha")
    if cfg.loss.get("sds") is None and cfg.loss.get("clip") is None:
        raise ConfigError("loss", "no guidance term is on: use loss=sds, loss=clip or loss=sds_clip")
    if cfg.loss.get("sds") is not None:
        _validate_sds(cfg.loss.sds, "loss.sds")
        _validate_sds_resolution(cfg)
    if cfg.loss.get("clip") is not None:
        Schedule.parse(cfg.loss.clip.clip_coef, "loss.clip.clip_coef")
    _validate_task(cfg)
    normalize = OmegaConf.select(cfg, "guidance_map.normalize")
    if getattr(normalize, "value", normalize) == "divide" and cfg.guidance_map.divisor <= 0:
        raise ConfigError("guidance_map.divisor", f"must be > 0, got {cfg.guidance_map.divisor}")
    for key in ("schedule.iterations", "loss.n_backgrounds", "trainer.batch_size"):
        _positive(cfg, key)
    _positive(cfg, "schedule.timelapse_every", 0)
    _validate_stop(cfg)
    _positive(cfg, "trainer.num_workers", 0)
    threshold = OmegaConf.select(cfg, "task.threshold")
    if threshold is not None and not 0 < threshold < 1:
        raise ConfigError("task.threshold", f"must lie strictly between 0 and 1, got {threshold}")
    _positive(cfg, "task.sweep_levels", 0)
    for key in ("blur_sigma", "dilate", "erode"):
        _positive(cfg, f"task.postprocess.{key}", 0)
    std_scale = OmegaConf.select(cfg, "task.postprocess.std_scale")
    if std_scale is not None and std_scale <= 0:
        raise ConfigError("task.postprocess.std_scale", f"must be > 0, got {std_scale}")
    bilateral = cfg.param.bilateral
    if bilateral is not None:
        if bilateral.kernel_size < 1 or bilateral.kernel_size % 2 == 0:
            raise ConfigError(
                "param.bilateral.kernel_size", f"must be a positive odd integer, got {bilateral.kernel_size}"
            )
        for key in ("tolerance", "sigma"):
            if bilateral[key] <= 0:
                raise ConfigError(f"param.bilateral.{key}", f"must be > 0, got {bilateral[key]}")
        _positive(cfg, "param.bilateral.iterations", 0)


def _validate_method(cfg: DictConfig) -> None:
    """The method class checks its own settings (``check_config``, e.g. baselines need Stable Diffusion)."""
    try:
        method = get_class(cfg.method._target_)
    except (ImportError, ValueError) as err:
        raise ConfigError("method._target_", f"cannot import {cfg.method._target_!r}: {err}") from err
    check = getattr(method, "check_config", None)
    if check is not None:
        check(cfg)


def _validate_sds(sds: DictConfig, key: str) -> None:
    scale = Schedule.parse(sds.guidance_scale, f"{key}.guidance_scale")
    low = Schedule.parse(sds.min_step, f"{key}.min_step")
    high = Schedule.parse(sds.max_step, f"{key}.max_step")
    if any(v < 0 for v in scale.breakpoints):
        raise ConfigError(f"{key}.guidance_scale", "must be >= 0")
    for name, schedule in (("min_step", low), ("max_step", high)):
        if any(not 0 <= v <= 1 for v in schedule.breakpoints):
            raise ConfigError(
                f"{key}.{name}",
                f"is a fraction of the training timesteps: it must lie in [0, 1], got {list(schedule.breakpoints)}",
            )
    points = sorted(set(low.iterations) | set(high.iterations))
    for it in points:
        if low(it) >= high(it):
            raise ConfigError(
                f"{key}.min_step",
                f"must be < {key}.max_step at every iteration; at iteration {it} "
                f"min_step={low(it):g} >= max_step={high(it):g}",
            )
    if sds.grad_clip is not None and sds.grad_clip <= 0:
        raise ConfigError(f"{key}.grad_clip", f"must be > 0 or null, got {sds.grad_clip}")
    if sds.get("colour_lattice") is not None and sds.colour_lattice < 2:
        raise ConfigError(f"{key}.colour_lattice", f"must be >= 2 (points per RGB axis), got {sds.colour_lattice}")


RGBA_TASK = "peekaboo.tasks.rgba.RGBATask"
PROMPTS_DATA = "peekaboo.data.prompts.PromptsDataset"
GRID_TASK = "peekaboo.tasks.fg_bg_grid.FgBgGridTask"
SEGMENT_TASK = "peekaboo.tasks.segment.SegmentTask"
GRID_DATA = "peekaboo.data.fg_bg_grid.FgBgGridDataset"


def _validate_stop(cfg: DictConfig) -> None:
    """``schedule.stop=converged`` stops segmentation units on their masks; its window is made of whole checks."""
    stop = OmegaConf.select(cfg, "schedule.stop")
    if getattr(stop, "value", stop) != "converged":
        return
    task = OmegaConf.select(cfg, "task._target_")
    if task != SEGMENT_TASK:
        raise ConfigError(
            "schedule.stop",
            f"'converged' stops segmentation masks (task=segment), not {task}: use schedule.stop=fixed",
        )
    for key in ("every", "window"):
        _positive(cfg, f"schedule.converged.{key}")
    for key in ("min_iterations", "tolerance"):
        _positive(cfg, f"schedule.converged.{key}", 0)
    converged = cfg.schedule.converged
    if converged.window % converged.every:
        raise ConfigError(
            "schedule.converged.window",
            f"must be a multiple of schedule.converged.every ({converged.every}), got {converged.window}",
        )
    if not 0 < converged.threshold < 1:
        raise ConfigError(
            "schedule.converged.threshold", f"must lie strictly between 0 and 1, got {converged.threshold}"
        )


def _validate_task(cfg: DictConfig) -> None:
    """Generation (task=rgba, task=fg_bg_grid) has no input image; segmentation needs one."""
    task, data = OmegaConf.select(cfg, "task._target_"), OmegaConf.select(cfg, "data._target_")
    if (task == GRID_TASK) != (data == GRID_DATA):
        raise ConfigError(
            "data" if task == GRID_TASK else "task",
            "task=fg_bg_grid and data=fg_bg_grid (or data=fg_bg_grid_toy) go together: use experiment=fig_fg_bg_grid",
        )
    if task == GRID_TASK:
        _generated_image(cfg, "fg_bg_grid")
        _positive(cfg, "task.size")
        _positive(cfg, "task.timelapse_size")
        return
    if task != RGBA_TASK:
        if data == PROMPTS_DATA:
            raise ConfigError("data", "data=prompts has no images to segment: use it with task=rgba (experiment=rgba)")
        return
    _generated_image(cfg, "rgba")
    backgrounds = cfg.task.backgrounds
    if not backgrounds:
        raise ConfigError("task.backgrounds", "needs at least one background colour")
    for name, colour in backgrounds.items():
        if len(colour) != 3 or not all(0 <= c <= 1 for c in colour):
            raise ConfigError(f"task.backgrounds.{name}", f"must be an RGB triple in [0, 1], got {list(colour)}")
    if cfg.loss.n_backgrounds > len(backgrounds):
        raise ConfigError(
            "loss.n_backgrounds",
            f"task=rgba composites over distinct backgrounds: at most {len(backgrounds)} (task.backgrounds), "
            f"got {cfg.loss.n_backgrounds}",
        )
    _positive(cfg, "task.size")


def _validate_sds_resolution(cfg: DictConfig) -> None:
    resolution = cfg.loss.sds.get("resolution")
    if resolution is None:
        return
    if resolution < 8 or resolution % 8:
        raise ConfigError("loss.sds.resolution", f"must be null or a positive multiple of 8, got {resolution}")
    if cfg.model.get("_target_") == ToyPriorConfig._target_ and resolution != cfg.model.size:
        raise ConfigError(
            "loss.sds.resolution",
            f"the toy world's prior only scores images of its own size ({cfg.model.size}); got {resolution}: "
            "leave it null",
        )


def _generated_image(cfg: DictConfig, task: str) -> None:
    """Generation tasks have no fixed input image: nothing can guide a bilateral filter or be encoded once."""
    if cfg.param.bilateral is not None:
        raise ConfigError(
            "param.bilateral",
            f"task={task} generates its images, so nothing can guide a bilateral filter: use param=fourier_rgba or "
            "param=raster_rgba (or param.bilateral=null)",
        )
    composite = OmegaConf.select(cfg, "loss.sds.composite")
    if getattr(composite, "value", composite) == "latent":
        raise ConfigError(
            "loss.sds.composite",
            f"'latent' blends the latents of a fixed image with solid colours; task={task} generates its images: "
            "use loss.sds.composite=pixel",
        )
