"""Start-up checks the schemas cannot express: ranges and cross-field constraints.

Each component checks its own settings: the class named by a group's ``_target_`` may define a classmethod
``check_config(cfg)`` (tasks, parametrizations and their fields, the objective and its guidance terms, guides,
methods, priors, datasets). What is left here concerns the whole config (finite numbers, resolvable interpolations,
run_name) and the small groups (schedule, trainer, optimizer). Each failure is a ``ConfigError`` naming the full key,
raised before any model or dataset is loaded.
"""

from __future__ import annotations

import math
from typing import Any

from hydra.utils import get_class, get_object
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from peekaboo.errors import ConfigError

COMPONENT_GROUPS = ("method", "data", "model", "loss", "param", "param.field", "guidance_map", "task")


def positive(cfg: DictConfig, key: str, minimum: float = 1) -> None:
    """``key`` (if set) must be >= ``minimum``."""
    value = OmegaConf.select(cfg, key)
    if value is not None and value < minimum:
        raise ConfigError(key, f"must be >= {minimum}, got {value}")


def _finite(node: Any, key: str = "") -> None:
    """No value of the config is NaN or infinite (``optimizer.lr=nan`` would silently produce NaN masks)."""
    if isinstance(node, dict):
        for name, value in node.items():
            _finite(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _finite(value, f"{key}[{index}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(key, f"must be a finite number, got {node}")


def validate(cfg: DictConfig) -> None:
    try:
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(err.full_key, "is required but missing (???): set it on the command line") from err
    except OmegaConfBaseException as err:  # e.g. an interpolation that cannot be resolved
        raise ConfigError(getattr(err, "full_key", None) or "?", str(err).splitlines()[0]) from err
    _finite(container)
    validate_run_name(cfg)

    for group in COMPONENT_GROUPS:
        check_component(cfg, group)
    _validate_trainer(cfg)
    _validate_optimizer(cfg)
    for key in ("schedule.iterations", "trainer.batch_size"):
        positive(cfg, key)
    positive(cfg, "schedule.timelapse_every", 0)
    positive(cfg, "logger.live_every")
    check_stop(cfg)
    positive(cfg, "trainer.num_workers", 0)


def _validate_trainer(cfg: DictConfig) -> None:
    """A GPU trainer on a machine without one fails here, in one line, rather than deep inside Lightning."""
    import torch

    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator") or "cpu").lower()
    if accelerator in ("gpu", "cuda"):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ConfigError(
                "trainer.accelerator",
                f"'{accelerator}' but no CUDA GPU is visible to torch (torch {torch.__version__}, CUDA build: "
                f"{torch.version.cuda or 'none'}); use trainer=cpu, or check CUDA_VISIBLE_DEVICES and the driver",
            )
        devices = OmegaConf.select(cfg, "trainer.devices")
        if isinstance(devices, int) and not isinstance(devices, bool) and devices > available:
            raise ConfigError("trainer.devices", f"asks for {devices} GPUs but {available} are visible")
    elif accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator", "'mps' but the MPS backend is not available; use trainer=cpu")


def _validate_optimizer(cfg: DictConfig) -> None:
    lr = OmegaConf.select(cfg, "optimizer.lr")
    if lr is not None and lr <= 0:
        raise ConfigError("optimizer.lr", f"must be > 0, got {lr} (a negative step size climbs the loss)")
    for key in ("weight_decay", "momentum"):
        positive(cfg, f"optimizer.{key}", 0)
    eps = OmegaConf.select(cfg, "optimizer.eps")
    if eps is not None and eps <= 0:
        raise ConfigError("optimizer.eps", f"must be > 0, got {eps}")
    betas = OmegaConf.select(cfg, "optimizer.betas")
    if betas is not None and not all(0 <= b < 1 for b in betas):
        raise ConfigError("optimizer.betas", f"must lie in [0, 1), got {list(betas)}")


def validate_run_name(cfg: DictConfig) -> None:
    """``run_name`` names a directory under ``outputs/``: it must not climb out of it (also checked by the sweep
    callback before Hydra creates the directory)."""
    name = str(OmegaConf.select(cfg, "run_name") or "")
    if not name.strip() or name.startswith(("/", "~")) or ".." in name.replace("\\", "/").split("/"):
        raise ConfigError(
            "run_name", f"must be a relative name without '..' (it names outputs/<run_name>), got {name!r}"
        )


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


def component_class(target: str, key: str, classes_only: bool = True) -> Any:
    """What ``target`` names: a class (or, with ``classes_only=False``, also a factory function such as
    ``build_tiny_sd``); a ConfigError naming ``key`` when it cannot be imported."""
    try:
        return get_class(target) if classes_only else get_object(target)
    except (ImportError, ValueError) as err:
        raise ConfigError(key, f"cannot import {target!r}: {err}") from err


def check_component(cfg: DictConfig, key: str) -> None:
    """The class named by ``<key>._target_`` checks its own settings (its ``check_config``, if it has one)."""
    target = OmegaConf.select(cfg, f"{key}._target_")
    if target is None:
        return
    check = getattr(component_class(target, f"{key}._target_", classes_only=False), "check_config", None)
    if check is not None:
        check(cfg)
