"""Keep freed CPU memory in the process for reuse, instead of handing every large tensor back to the OS.

torch's CPU allocator has no cache: it asks glibc, which serves blocks of more than 32 MiB with a fresh
``mmap`` and unmaps them on free, and trims the heap's top whenever more than 128 KiB lie free there. So each
large activation of a full-size SD step is faulted in anew, 4 KiB at a time, and zeroed by the kernel. Raising
both thresholds to 1 GiB lets freed blocks be reused. The price is resident memory that stays at its
high-water mark, as with CUDA's caching allocator (``release_freed_memory`` hands it back, as
``torch.cuda.empty_cache`` does). Measurements: docs/performance.md.

It is done through ``mallopt`` by an explicit call (the command line and the bench make it; importing peekaboo does
not), only with glibc, and never over a user's own setting: the glibc variables ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_`` or a ``glibc.malloc`` tunable win, and ``PEEKABOO_KEEP_FREED_MEMORY=0`` leaves glibc's
defaults alone.
"""

from __future__ import annotations

import ctypes
import functools
import os

THRESHOLD = 1 << 30  # bytes: blocks below it come from the heap, and up to it may lie free at the heap's top
OPT_OUT = "PEEKABOO_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>
_state = {"kept": False}


def user_malloc_settings() -> list[str]:
    """The glibc malloc settings given in the environment, which take precedence over ours."""
    given = [name for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if name in os.environ]
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        given.append("GLIBC_TUNABLES")
    return given


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (looked up once), else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or no glibc (musl, macOS)
        return None
    return ctypes.CDLL(None)


def keep_freed_memory(threshold: int = THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` unless opted out; says whether they are raised."""
    if os.environ.get(OPT_OUT, "1") == "0" or user_malloc_settings():
        return _state["kept"]
    libc = glibc()
    if libc is not None:
        kept = libc.mallopt(_M_MMAP_THRESHOLD, threshold) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, threshold) == 1
        _state["kept"] = _state["kept"] or kept
    return _state["kept"]


def freed_memory_kept() -> bool:
    return _state["kept"]


def release_freed_memory() -> None:
    """Hand the freed memory kept so far back to the OS (glibc's ``malloc_trim``), e.g. before a peak measurement."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)
