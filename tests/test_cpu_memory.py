"""keep_freed_memory (called by the command line and the bench) makes large CPU tensors reuse freed memory instead of
page-faulting it in anew; importing peekaboo alone changes nothing."""

import os
import subprocess
import sys

import pytest

from peekaboo.cpu_memory import glibc

pytestmark = pytest.mark.skipif(glibc() is None, reason="the malloc thresholds are glibc's")

PAGES_PER_ROUND = 4 * (48 << 20) // 4096

# Each round does what an SDS iteration does to memory: a few large activations, all freed at its end. The
# child imports peekaboo, opts in (or not: KEEP), prints whether the thresholds are raised, the page faults of
# each of ten rounds, then how many MiB of resident memory release_freed_memory hands back.
ROUNDS = """
import os, resource, peekaboo, torch
from pathlib import Path
from peekaboo.cpu_memory import freed_memory_kept, keep_freed_memory, release_freed_memory
if os.environ["KEEP"] == "1":
    keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def resident_mib():
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
def round_trip():
    before = faults()
    tensors = [torch.ones(48 << 20, dtype=torch.uint8) for _ in range(4)]
    del tensors
    return faults() - before
rounds = [round_trip() for _ in range(10)]
before = resident_mib()
release_freed_memory()
print(freed_memory_kept(), before - resident_mib(), *rounds)
"""


def run_rounds(keep: bool = True, **env: str) -> tuple[bool, float, list[int]]:
    names = ("PEEKABOO_KEEP_FREED_MEMORY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
    clean = {k: v for k, v in os.environ.items() if k not in names} | {"KEEP": "1" if keep else "0"}
    out = subprocess.run([sys.executable, "-c", ROUNDS], env=clean | env, capture_output=True, text=True, check=True)
    kept, released, *faults = out.stdout.split()
    return kept == "True", float(released), [int(f) for f in faults]


def test_freed_memory_is_reused_after_the_first_rounds_and_released_on_request():
    kept, released, faults = run_rounds()
    assert kept
    assert faults[0] >= 0.9 * PAGES_PER_ROUND  # the first round maps its memory
    assert sum(faults[-5:]) <= 0.02 * PAGES_PER_ROUND  # later rounds find it in the heap
    assert released >= 150  # of the 192 MiB a round frees


@pytest.mark.parametrize(
    "env",
    [
        {"keep": False},
        {"PEEKABOO_KEEP_FREED_MEMORY": "0"},
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
    ],
    ids=["import-only", "opted-out", "user-trim-threshold", "user-tunable"],
)
def test_glibc_defaults_stay_unless_asked_for_or_when_the_user_set_malloc(env):
    kept, released, faults = run_rounds(**env)
    assert not kept
    assert min(faults) >= 0.9 * PAGES_PER_ROUND  # every round faults its memory in again
    assert released < 10  # there was nothing kept to release
