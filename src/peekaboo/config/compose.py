"""The job config as ``run.py`` composes it, without running anything: for the Python API, benchmarks and tests.

The presets ship inside the package (``peekaboo/conf``: a link to the checkout's ``conf/``, copied into wheels),
so composing works from a checkout and from an installed package alike."""

from __future__ import annotations

import re
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from peekaboo.errors import ConfigError

KEY_PATTERN = re.compile(r"(?:Could not override|Could not find|Could not load) '([^']+)'|full_key: (\S+)")
CONF = Path(__file__).resolve().parents[1] / "conf"  # the package's presets (the checkout's conf/)


def compose(overrides: list[str], config_dir: Path = CONF) -> DictConfig:
    """``conf/config.yaml`` with command-line style ``overrides`` (``["model=tiny_sd", "seed=3"]``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from peekaboo.config.store import register_configs

    if not Path(config_dir).is_dir():
        raise ConfigError(
            "config_dir", f"{config_dir} does not exist: reinstall peekaboo (its wheel carries the presets in conf/)"
        )
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def compose_checked(overrides: list[str], config_dir: Path = CONF) -> DictConfig:
    """``compose``, with Hydra's errors (an unknown group option or key, a wrongly typed value) as a
    ``ConfigError`` naming the key: what the Python API raises."""
    try:
        return compose(overrides, config_dir)
    except (HydraException, OmegaConfBaseException) as err:
        raise composition_error(err, overrides) from None


def composition_error(err: Exception, overrides: list[str]) -> ConfigError:
    """Hydra's composition error as a ConfigError naming the key (found in the message, else the overrides)."""
    message = str(err).strip()
    found = KEY_PATTERN.search(message)
    key = (found.group(1) or found.group(2)) if found else "overrides"
    if key.count("/") == 1 and "=" not in key:  # "Could not find 'param/rastr'": the group
        key = key.split("/")[0]
    return ConfigError(key, f"{message} (overrides: {' '.join(overrides) or 'none'})")
