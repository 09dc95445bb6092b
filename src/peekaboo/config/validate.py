"""Start-up checks the schemas cannot express: ranges and cross-field constraints.

Each component checks its own settings: the class named by a group's ``_target_`` may define a classmethod
``check_config(cfg)`` (tasks, parametrizations, the objective and its guidance terms, guides, methods). What is
left here concerns the small groups (schedule, trainer). Each failure is a ``ConfigError`` naming the full key,
raised before any model or dataset is loaded.
"""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from peekaboo.errors import ConfigError

COMPONENT_GROUPS = ("method", "loss", "param", "guidance_map", "task")


def positive(cfg: DictConfig, key: str, minimum: float = 1) -> None:
    """``key`` (if set) must be >= ``minimum``."""
    value = OmegaConf.select(cfg, key)
    if value is not None and value < minimum:
        raise ConfigError(key, f"must be >= {minimum}, got {value}")


def validate(cfg: DictConfig) -> None:
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(err.full_key, "is required but missing (???): set it on the command line") from err

    for group in COMPONENT_GROUPS:
        check_component(cfg, group)
    for key in ("schedule.iterations", "trainer.batch_size"):
        positive(cfg, key)
    positive(cfg, "schedule.timelapse_every", 0)
    check_stop(cfg)
    positive(cfg, "trainer.num_workers", 0)


def check_stop(cfg: DictConfig) -> None:
    """``schedule.stop=converged``: its window is made of whole checks (the task says whether it can stop early)."""
    stop = OmegaConf.select(cfg, "schedule.stop")
    if getattr(stop, "value", stop) != "converged":
        return
    for key in ("every", "window"):
        positive(cfg, f"schedule.converged.{key}")
    for key in ("min_iterations", "tolerance"):
        positive(cfg, f"schedule.converged.{key}", 0)
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


def component_class(target: str, key: str) -> type:
    try:
        return get_class(target)
    except (ImportError, ValueError) as err:
        raise ConfigError(key, f"cannot import {target!r}: {err}") from err


def check_component(cfg: DictConfig, key: str) -> None:
    """The class named by ``<key>._target_`` checks its own settings (its ``check_config``, if it has one)."""
    target = OmegaConf.select(cfg, f"{key}._target_")
    if target is None:
        return
    check = getattr(component_class(target, f"{key}._target_"), "check_config", None)
    if check is not None:
        check(cfg)
