"""Start-up stays light: the config schemas, ``run.py --help`` and tab completion import no torch, Lightning or
model library, and importing peekaboo changes no process-wide setting."""

import json
import os
import subprocess
import sys

from conftest import ROOT

HEAVY = ("torch", "lightning", "transformers", "diffusers", "matplotlib", "wandb", "kornia", "sklearn")

REPORT = f"""
import atexit, json, os, sys
def report():
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    print("REPORT" + json.dumps(heavy), file=sys.stderr, flush=True)
atexit.register(report)
"""


def heavy_modules_after(code: str, *args: str, **env: str) -> tuple[list[str], str]:
    """The heavy modules loaded when ``code`` (given ``args``) ends, and what it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]), **env}
    result = subprocess.run(
        [sys.executable, "-c", REPORT + code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("REPORT")]
    return json.loads(line.removeprefix("REPORT")), result.stdout


def test_config_store_imports_no_heavy_library():
    code = "from peekaboo.config.store import register_configs\nregister_configs()"
    assert heavy_modules_after(code)[0] == []


RUN_PY = "import runpy, sys\nsys.argv = ['run.py', *sys.argv[1:]]\nrunpy.run_path('run.py', run_name='__main__')"


def test_help_and_tab_completion_import_no_heavy_library():
    heavy, printed = heavy_modules_after(RUN_PY, "--help")
    assert heavy == [] and "schedule: fig12, fig17, paper, quick, refcoco, rgba" in printed
    heavy, printed = heavy_modules_after(RUN_PY, "-sc", "query=bash", COMP_LINE="python run.py sched", COMP_POINT="25")
    assert heavy == [] and "schedule=" in printed.split()


def test_importing_peekaboo_changes_no_process_setting():
    code = (
        "import os\nbefore = dict(os.environ)\nimport peekaboo\n"
        "from peekaboo.cpu_memory import freed_memory_kept\n"
        "assert dict(os.environ) == before, 'import peekaboo changed the environment'\n"
        "assert not freed_memory_kept(), 'import peekaboo tuned malloc'"
    )
    assert heavy_modules_after(code)[0] == []
