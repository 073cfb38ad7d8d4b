"""A deterministic secrets scan over cassettes (R8): key shapes, canaries, unscrubbed auth headers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kling_core.testing.cassettes import SECRET
from kling_core.testing.matching import AUTH_HEADERS

# Value shapes that are credentials on the hosts we know, or our own canary.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a canary credential", re.compile(r"sk-CANARY-[0-9A-Za-z-]+")),
    ("an fal-style 'Key <token>' credential", re.compile(r"\bKey\s+(?!<SECRET>)[A-Za-z0-9_\-:.]{16,}")),
    ("a bearer JWT", re.compile(r"\bBearer\s+ey[A-Za-z0-9_\-]{8,}")),
    ("a JWT", re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}")),
    ("a Segmind key (SG_...)", re.compile(r"\bSG_[A-Za-z0-9]{8,}")),
    ("an sk- API key", re.compile(r"\bsk-(?!CANARY)[A-Za-z0-9_\-]{16,}")),
)
# Header values that are fine without the marker (no credential can hide in them).
_SCRUBBED = re.compile(r"^(?:[A-Za-z]+\s+)?<SECRET>$")


def _strings(doc: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(doc, str):
        yield path, doc
    elif isinstance(doc, Mapping):
        for k, v in doc.items():
            sub = f"{path}.{k}" if path else str(k)
            yield sub, str(k)
            yield from _strings(v, sub)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _strings(v, f"{path}[{i}]")


def _headers(doc: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every (path, header name, value) in any ``headers`` object of the document."""
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            sub = f"{path}.{k}" if path else str(k)
            if k == "headers" and isinstance(v, Mapping):
                for name, value in v.items():
                    yield f"{sub}.{name}", str(name), value
            else:
                yield from _headers(v, sub)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _headers(v, f"{path}[{i}]")


def scan_document(doc: Any, *, extra_values: Iterable[str] = ()) -> list[str]:
    """Every secret-like value in a cassette document, as ``path: what`` lines."""
    findings = []
    extras = [v for v in extra_values if v]
    for path, text in _strings(doc):
        for label, pattern in SECRET_PATTERNS:
            if pattern.search(text):
                findings.append(f"{path}: holds {label}")
        for value in extras:
            if value in text:
                findings.append(f"{path}: holds a known credential value")
    for path, name, value in _headers(doc):
        if name.lower() in AUTH_HEADERS and not (isinstance(value, str) and _SCRUBBED.match(value)):
            findings.append(f"{path}: auth header not scrubbed (use {SECRET!r}, e.g. 'Bearer {SECRET}')")
    return sorted(set(findings))


def scan_file(path: str | Path, *, extra_values: Iterable[str] = ()) -> list[str]:
    p = Path(path)
    text = p.read_text("utf-8")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = text  # scan the raw text; the schema check reports the JSON problem
    return [f"{p}: {f}" for f in scan_document(doc, extra_values=extra_values)]


def assert_no_secrets(paths: Iterable[str | Path], *, extra_values: Iterable[str] = ()) -> None:
    """Fail (AssertionError) listing every secret-like value found in the given files."""
    extras = list(extra_values)
    findings = [f for p in paths for f in scan_file(p, extra_values=extras)]
    if findings:
        raise AssertionError("secret-like values in cassettes:\n" + "\n".join(f"  - {f}" for f in findings))
