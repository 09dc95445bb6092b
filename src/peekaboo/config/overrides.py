"""Hydra command-line overrides from Python values, so the API takes ``{"schedule.iterations": 50}`` or
``["param=raster"]`` alike and per-call values replace earlier ones of the same key."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from peekaboo.errors import ConfigError

PLAIN = re.compile(r"[A-Za-z0-9_./:-]+")  # values Hydra's grammar reads as they are


def format_value(value: Any) -> str:
    """A Python value in Hydra's override grammar: null, true/false, numbers, quoted strings, [lists], {dicts}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if PLAIN.fullmatch(value) and value.lower() not in ("null", "true", "false"):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{key}:{format_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, Iterable):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    return format_value(str(value))


def as_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> list[str]:
    """``["key=value", ...]`` from a list of override strings or a ``{key: value}`` mapping (None: none)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={format_value(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(
            "overrides", f"expected a list of 'key=value' strings or a dict, got the string {overrides!r}"
        )
    listed = list(overrides)
    for entry in listed:
        if not isinstance(entry, str) or ("=" not in entry and not entry.startswith("~")):
            raise ConfigError("overrides", f"{entry!r} is not a Hydra override: write 'key=value' (e.g. 'seed=3')")
    return listed


def override_key(override: str) -> str:
    """The key an override sets (``+a.b=1`` -> ``a.b``), so a later override of it replaces the earlier one."""
    return override.split("=", 1)[0].lstrip("+~")


def merge_overrides(*groups: Iterable[str]) -> list[str]:
    """Overrides in order, each key once: a later group's value replaces an earlier one's, where it stood."""
    merged: dict[str, str] = {}
    for group in groups:
        for override in group:
            merged[override_key(override)] = override
    return list(merged.values())
