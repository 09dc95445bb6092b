"""One run per run directory: an exclusive ``flock`` on ``<run dir>/.lock`` for as long as the run writes there.

Two runs writing one directory would mix items of different configurations, or do every item twice. The second
run therefore fails at once with an ``OutputError`` that says who holds the directory (pid, host, config hash)
and whether its configuration differs; it never waits. The kernel drops the lock when its process ends, however
it ends (a killed run leaves the file, not the lock), so the next run resumes normally; a run that ends cleanly
leaves the file empty. Where the file system
has no ``flock`` (some network mounts) the run goes on unlocked, with a warning.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peekaboo.errors import OutputError
from peekaboo.io.atomic import output_error

LOCK = ".lock"
log = logging.getLogger("peekaboo")


@contextmanager
def run_lock(directory: str | Path, config_hash: str) -> Iterator[None]:
    """Hold ``directory``'s lock (recording ``config_hash``, pid and host in it) for the body of the ``with``."""
    path = Path(directory) / LOCK
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as err:
        raise output_error(path, err) from err
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise in_use(path, handle, config_hash) from None
        except OSError as err:
            log.warning("cannot lock %s (%s): going on without protection against a concurrent run", path, err)
            yield
            return
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"config_hash": config_hash, "pid": os.getpid(), "host": socket.gethostname()}))
        handle.flush()
        try:
            yield
        finally:  # emptied, not removed: removing a locked file lets a waiter lock an inode no one else will see
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def in_use(path: Path, handle, config_hash: str) -> OutputError:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        holder = {}
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    if holder.get("config_hash") not in (None, config_hash):
        what = (
            f"with a different configuration (hash {holder['config_hash']}, this run's is {config_hash}); its items "
            "and this run's would mix"
        )
    else:
        what = "with the same configuration; both would do the same items"
    return OutputError(
        f"{path.parent} is in use by another run ({who}) {what}. Wait for it to finish, or choose another hydra.run.dir"
    )
