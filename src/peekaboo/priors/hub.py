"""Loading pretrained weights: the local cache first, one short question to the hub, then the download.

``from_pretrained`` alone asks the hub about every file (and waits out a timeout per file when the network is
unreachable), so missing weights could take minutes to be reported. ``load_pretrained`` instead loads a hub id
from the local Hugging Face cache without any network access when its ``probe`` file is there; otherwise, offline,
it fails at once, and online it asks the hub once (``HUB_TIMEOUT`` seconds, no retries) before downloading.
Every failure is one ``ModelLoadError`` saying where it looked and how to fix it (``load_error``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from peekaboo.errors import ModelLoadError

HUB_TIMEOUT = 10.0
T = TypeVar("T")


def offline_requested(local_files_only: bool) -> bool:
    return local_files_only or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def is_local(path: str) -> bool:
    """A directory (or a path-like string), not a hub id such as ``owner/name``."""
    return Path(path).expanduser().exists() or path.startswith(("/", ".", "~")) or path.count("/") > 1


def in_cache(path: str, probe: str, revision: str | None, cache_dir: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(path, probe, cache_dir=cache_dir, revision=revision), str)


def ask_hub(path: str, revision: str | None) -> None:
    """One request: does the hub have ``path`` (at ``revision``) for us? An ``OSError`` saying why not."""
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(path, revision=revision, timeout=HUB_TIMEOUT)
    except Exception as err:  # noqa: BLE001 - network, HTTP and auth errors alike: the reason goes into the message
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise OSError(f"the hub did not provide '{path}' ({type(err).__name__}: {first})") from err


def load_pretrained(
    load: Callable[[bool], T],
    *,
    what: str,
    path: str,
    revision: str | None,
    cache_dir: str | None,
    local_files_only: bool,
    probe: str,
    files: tuple[str, ...],
    key: str = "model.path",
) -> T:
    """``load(local_files_only)`` from the cache when ``probe`` (e.g. ``unet/config.json``) is cached, else from
    the hub after ``ask_hub``; local directories are loaded as they are."""
    offline = offline_requested(local_files_only)
    try:
        if is_local(path):
            return load(offline)
        if in_cache(path, probe, revision, cache_dir):
            try:
                return load(True)
            except (OSError, ValueError):
                if offline:
                    raise
        elif offline:
            raise FileNotFoundError(f"{probe} of '{path}' is not in the cache")
        else:
            ask_hub(path, revision)
        return load(False)  # online: what the cache lacks is downloaded
    except (OSError, ValueError) as err:
        raise load_error(what, path, cache_dir, offline, err, files, key) from err


def load_error(
    what: str,
    path: str,
    cache_dir: str | None,
    offline: bool,
    cause: BaseException,
    subfolders: tuple[str, ...],
    key: str = "model.path",
) -> ModelLoadError:
    """One actionable message for every way a ``from_pretrained`` can fail."""
    from huggingface_hub import constants

    where = Path(path).expanduser()
    if is_local(path):
        if not where.is_dir():
            looked, fix = (
                f"the local directory {where}, which does not exist",
                f"check {key} or download the weights there",
            )
        else:
            present = sorted(p.name for p in where.iterdir())
            shown = ", ".join(present[:10]) + (", ..." if len(present) > 10 else "")
            looked = f"the local directory {where} (contains: {shown or 'nothing'})"
            fix = f"make {where} hold what save_pretrained writes ({', '.join(subfolders)})"
    else:
        looked = f"the Hugging Face cache {cache_dir or constants.HF_HUB_CACHE}" + (
            " only (offline: local_files_only or HF_HUB_OFFLINE=1)" if offline else " and the hub"
        )
        fix = (
            f"download once on a machine with network (`hf download {path}`) and copy the cache, set HF_HOME or "
            f"{key.rpartition('.')[0]}.cache_dir to where it lies, or point {key}=/local/dir at a saved copy; "
            "for gated repos run `hf auth login` first"
        )
    return ModelLoadError(
        f"could not load {what} '{path}' ({key}). Looked in {looked}. Fix: {fix}. "
        f"Cause: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    )
