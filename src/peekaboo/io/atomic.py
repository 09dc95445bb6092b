"""Atomic file writes: a reader (or a resumed run) sees the old file or the complete new one, never half.

Files get the permissions of an ordinary ``open`` (``0o666`` less the umask), not ``mkstemp``'s private 0600. A
failed write (full disk, read-only directory, a file where a directory belongs) leaves no temporary behind and
becomes one ``OutputError`` naming the file, the cause and what to do; items already written stay intact.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from peekaboo.errors import OutputError

FIXES = {
    errno.ENOSPC: "the disk is full: free space (or choose another hydra.run.dir) and run again",
    errno.EDQUOT: "the disk quota is exhausted: free space (or choose another hydra.run.dir) and run again",
    errno.EROFS: "the file system is read-only: choose a writable hydra.run.dir / hydra.sweep.dir",
    errno.EACCES: "the directory is not writable by this user: fix its permissions or choose another hydra.run.dir",
    errno.EPERM: "the directory is not writable by this user: fix its permissions or choose another hydra.run.dir",
    errno.ENOTDIR: "a file stands where a directory is needed: move it or choose another hydra.run.dir",
    errno.EEXIST: "a file stands where a directory is needed: move it or choose another hydra.run.dir",
}


def cause_and_fix(err: OSError) -> str:
    """``"No space left on device (ENOSPC); the disk is full: ..."``."""
    name = errno.errorcode.get(err.errno, "") if err.errno is not None else ""
    return f"{err.strerror or err}{f' ({name})' if name else ''}; {FIXES.get(err.errno, 'check the run directory')}"


def output_error(path: str | Path, err: OSError) -> OutputError:
    return OutputError(
        f"cannot write {path}: {cause_and_fix(err)}; finished items are kept and the next run resumes after them"
    )


def check_writable(directory: str | Path, key: str) -> None:
    """Fail at once, in one line, when ``directory`` (named by the config ``key``) cannot hold a run's files."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{key}={directory} is a file, not a directory: move it or choose another {key}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_check.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{key}={directory} cannot be written: {cause_and_fix(err)}") from err


def umask() -> int:
    """The process's umask, read without changing it (``/proc``), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise output_error(path, err) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~umask())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, OutputError):
            raise output_error(path, err) from err
        raise


def remove_stale_temporaries(directory: str | Path) -> None:
    """Delete temporaries that a killed process left behind in ``directory`` (not recursive)."""
    for path in Path(directory).glob(".*.tmp"):
        path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)
