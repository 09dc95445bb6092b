"""Shared fixtures: offline environment, a session-wide tiny SD pipeline, Hydra composition helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Tests never touch the network: no hub, W&B disabled unless a test asks for offline mode.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def peekaboo_cache(tmp_path_factory) -> Path:
    """One tiny_sd build per test session (PEEKABOO_CACHE is inherited by subprocesses)."""
    cache = Path(os.environ.get("PEEKABOO_TEST_CACHE") or tmp_path_factory.mktemp("peekaboo_cache"))
    os.environ["PEEKABOO_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_prior(peekaboo_cache):
    from peekaboo.priors.tiny_sd import build_tiny_sd

    return build_tiny_sd(seed=0, cache_dir=str(peekaboo_cache))


def compose(overrides: list[str]):
    """The job config as ``run.py`` would compose it (without running anything)."""
    from peekaboo.config.compose import compose as compose_job

    return compose_job(overrides, CONF)


def run_cli(args: list[str], cwd: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python run.py ARGS`` in a subprocess, as a user would type it (``env`` adds variables)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def module_and_items(prior: str, param: str, n_items: int, *extra: str):
    """A set-up ``PeekabooModule`` (toy world or tiny_sd) and ``n_items`` toy scenes (32x32), 2 iterations.

    Fourier fields are shrunk (32 features, 16 hidden) for speed; on tiny_sd the SD Fourier recipe's lr (1e-5)
    barely moves a mask in 2 steps, so it is raised to 1e-2 to make comparisons of masks meaningful.
    """
    from peekaboo.config.build import build
    from peekaboo.lightning.module import PeekabooModule

    cfg = compose(
        [
            f"model={prior}",
            "data=toy",
            f"data.num_scenes={n_items}",
            f"param={param}",
            "param.fourier.num_features=32",
            "param.fourier.hidden=16",
            *(["param.recipe.lr=1e-2"] if prior == "tiny_sd" and param.startswith("fourier") else []),
            "schedule.iterations=2",
            "schedule.timelapse_every=0",
            *extra,
        ]
    )
    module = PeekabooModule(cfg)
    module.setup("predict")
    dataset = build(cfg.data)
    return module, [dataset[i] for i in range(n_items)]
