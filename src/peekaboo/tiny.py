"""Tiny random models built from configs, for offline tests and plumbing checks (SD, CLIP, DPT).

Each is built once per specification into ``$PEEKABOO_CACHE`` (default ``~/.cache/peekaboo``) with
``save_pretrained`` and then loaded by the same ``from_pretrained`` code as real weights, so the tested loading
path is the real one. Builds go to a staging directory renamed into place, so concurrent builders (parallel test
workers, DDP ranks) leave exactly one complete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def cache_root(cache_dir: str | None = None) -> Path:
    """``cache_dir``, else ``$PEEKABOO_CACHE``, else ``~/.cache/peekaboo``."""
    return Path(cache_dir or os.environ.get("PEEKABOO_CACHE", "~/.cache/peekaboo")).expanduser()


def cached_build(
    kind: str, spec: dict[str, Any], build: Callable[[Path], None], marker: str, cache_dir: str | None = None
) -> Path:
    """The directory ``<cache>/<kind>-<hash of spec>``, calling ``build(staging directory)`` first if absent.

    ``marker`` is a file every complete build contains (the rename makes the directory appear complete or not
    at all; the marker guards against anything else having created the directory).
    """
    root = cache_root(cache_dir)
    digest = hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:10]
    directory = root / f"{kind}-{digest}"
    if (directory / marker).exists():
        return directory
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=root))
    try:
        build(staging)
        try:
            staging.rename(directory)  # atomic
        except OSError:
            if not (directory / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def byte_vocabulary() -> dict[str, int]:
    """CLIP's byte-to-unicode table as a BPE vocabulary without merges (each byte alone and word-final).

    A real ``CLIPTokenizer`` built on it tokenises any text byte by byte, so tiny models need no downloads.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in codes]
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def byte_tokenizer(model_max_length: int = 77):
    """A ``CLIPTokenizer`` over :func:`byte_vocabulary`."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=byte_vocabulary(), merges=[], model_max_length=model_max_length)


def save_image_processor_config(
    directory: Path, processor: str, size: int, mean: Sequence[float], std: Sequence[float]
) -> None:
    """The ``preprocessor_config.json`` a hub checkpoint ships; peekaboo reads its mean, std and size."""
    config = {
        "image_processor_type": processor,
        "image_mean": list(mean),
        "image_std": list(std),
        "size": {"height": size, "width": size},
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(config, indent=2))
