"""Reading host JSON by path: ``"data.task_result.videos.0.url"``.

Host documents are untrusted: every reader returns ``None`` for a missing, mistyped or
out-of-range value instead of raising, so a parser decides what absence means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

MISSING: Any = object()


def get(doc: Any, path: str) -> Any:
    """The value at a dotted path (list indexes as numbers), or :data:`MISSING`."""
    value = doc
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            if index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


def first(doc: Any, paths: Iterable[str]) -> Any:
    """The first path that is present (not None), or :data:`MISSING`."""
    for path in paths:
        value = get(doc, path)
        if value is not MISSING and value is not None:
            return value
    return MISSING


def text(doc: Any, paths: str | Iterable[str]) -> str | None:
    """The first non-blank string among the paths."""
    for path in (paths,) if isinstance(paths, str) else paths:
        value = get(doc, path)
        if isinstance(value, str) and value.strip():
            return value
    return None


def code(doc: Any, paths: str | Iterable[str]) -> str | None:
    """A host code (string or integer) as a string."""
    for path in (paths,) if isinstance(paths, str) else paths:
        value = get(doc, path)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.strip()):
            return str(value)
    return None


def integer(doc: Any, path: str | None, lo: int = 0, hi: int = 2**63) -> int | None:
    """An integer within ``[lo, hi]`` (host numbers out of range are dropped, not trusted)."""
    if path is None:
        return None
    value = get(doc, path)
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return value
    return None


def number(doc: Any, path: str | None, lo: float = 0.0, hi: float = 1e15) -> float | None:
    """A finite number within ``[lo, hi]``; numeric strings count (some hosts quote them)."""
    if path is None:
        return None
    value = get(doc, path)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi:
        return float(value)
    return None


def header_number(headers: Mapping[str, str], name: str | None) -> float | None:
    if name is None:
        return None
    return number({"v": headers.get(name)}, "v", -1e15)


def header_time(headers: Mapping[str, str], name: str | None) -> float | None:
    """A point in time from a header: epoch seconds or ISO-8601 (``2026-01-01T00:00:00Z``)."""
    if name is None or not headers.get(name):
        return None
    raw = headers[name].strip()
    stamp = number({"v": raw}, "v")
    if stamp is not None:
        return stamp
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
