"""The job config as ``run.py`` composes it, without running anything: for benchmarks, notebooks and tests."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from peekaboo.errors import ConfigError

CONF = Path(__file__).resolve().parents[3] / "conf"  # the checkout's config directory (next to run.py)


def compose(overrides: list[str], config_dir: Path = CONF) -> DictConfig:
    """``conf/config.yaml`` with command-line style ``overrides`` (``["model=tiny_sd", "seed=3"]``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from peekaboo.config.store import register_configs

    if not Path(config_dir).is_dir():
        raise ConfigError("config_dir", f"{config_dir} does not exist: use a peekaboo checkout (it holds conf/)")
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)
