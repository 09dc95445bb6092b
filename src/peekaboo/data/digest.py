"""Digests of an item's inputs (image and mask bytes, prompts, index row), stored in its result.json.

Resuming compares them with the inputs as they are now: an item whose image, mask, prompt or index row changed
since it was written is redone, even though the configuration (``config_hash``) is the same. Datasets that read
files define ``input_digest(index)``; those generated from the configuration alone (toy scenes, prompt lists) need
none, as the configuration hash covers them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from peekaboo.errors import DataError

_FILES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> digest: each file is read once


def file_digest(path: str | Path | None) -> str | None:
    """SHA-256 of a file's bytes (None for no file); a file that cannot be read is a DataError naming it."""
    if path is None:
        return None
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _FILES:
            _FILES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err.strerror or err})") from err
    return _FILES[key]


def digest(*parts: Any) -> str:
    """One digest of JSON-able parts (file digests, prompts, index rows)."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_digest(dataset: Any, index: int) -> str | None:
    """The digest of item ``index``'s inputs, or None when the dataset has no ``input_digest`` (nothing to check)."""
    method = getattr(dataset, "input_digest", None)
    return method(index) if method is not None else None
