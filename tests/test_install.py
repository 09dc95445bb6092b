"""The package outside the checkout: a built wheel carries the presets, and ``peekaboo`` / ``python -m peekaboo``
run from any directory.

To stay offline and fast, the fresh venv sees this interpreter's site-packages (torch, hydra, ...) through a
``.pth`` file, and the wheel is installed without dependencies or build isolation."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_installs_into_a_fresh_venv_and_runs_from_any_directory(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("conf", "src"):
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    assert (source / "src" / "peekaboo" / "conf").is_symlink()
    build = ["wheel", source, "--no-deps", "--no-build-isolation", "-q", "-w", "dist"]
    run([sys.executable, "-m", "pip", *build], tmp_path)
    (wheel,) = (tmp_path / "dist").glob("peekaboo-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout
    (Path(purelib.strip()) / "shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = ["install", "--no-deps", "--no-build-isolation", "-q", wheel]
    run([sys.executable, "-m", "pip", "--python", python, *install], tmp_path)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([python, "-c", "import peekaboo.config.compose as c; print(c.CONF)"], elsewhere, env).stdout.strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_symlink()  # the wheel's own copy of conf/
    assert (Path(where) / "model" / "toy.yaml").is_file()

    result = run(
        [venv / "bin" / "peekaboo", "schedule=quick", "data.num_scenes=2", "trainer.enable_progress_bar=false"],
        elsewhere,
        env,
    )
    (run_dir,) = (elsewhere / "outputs").glob("toy_raster_bilateral/*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["items"] == 2 and 0 <= metrics["mIoU"] <= 1
    assert "mIoU" in (run_dir / "run.log").read_text() and "mIoU" in result.stdout

    composed = run([python, "-m", "peekaboo", "model=sd15", "--cfg", "job"], elsewhere, env).stdout
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in composed
