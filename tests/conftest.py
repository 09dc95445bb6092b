"""Shared fixtures: offline environment, a session-wide tiny SD pipeline, Hydra composition helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads made small tensor
# programs 10-100x slower (measured: the toy prior's 8-sample call, 3 ms -> 260 ms). Inherited by subprocesses.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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


@pytest.fixture(scope="session")
def dog_image(tmp_path_factory) -> Path:
    """A 64x48 blue image with a red 24x28 rectangle (dog.png) and its ground truth (dog_mask.png)."""
    root = tmp_path_factory.mktemp("dog")
    image = np.zeros((48, 64, 3), np.uint8)
    image[...] = (40, 90, 200)
    image[10:38, 20:44] = (240, 60, 40)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:38, 20:44] = 255
    Image.fromarray(image).save(root / "dog.png")
    Image.fromarray(mask).save(root / "dog_mask.png")
    return root


def relative_error(value, reference) -> float:
    """||value - reference|| / ||reference||, in float64 (gradients checked against a more exact computation)."""
    return ((value.double() - reference.double()).norm() / reference.double().norm()).item()


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


def write_cocostuff_layout(root: Path, ids: list[str], fine) -> None:
    """data=cocostuff27's layout: grey images and the label map ``fine`` ((H, W) uint8) for every id."""
    import numpy as np
    from PIL import Image

    for split_dir in ("images/val2017", "annotations/val2017", "curated/val2017"):
        (root / split_dir).mkdir(parents=True, exist_ok=True)
    (root / "curated/val2017/Coco164kFull_Stuff_Coarse_7.txt").write_text("\n".join(ids) + "\n")
    for image_id in ids:
        Image.fromarray(np.full((*fine.shape, 3), 128, np.uint8)).save(root / f"images/val2017/{image_id}.jpg")
        Image.fromarray(fine).save(root / f"annotations/val2017/{image_id}.png")


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
            *(["param.field.num_features=32", "param.field.hidden=16"] if param.startswith("fourier") else []),
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
