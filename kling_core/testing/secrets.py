"""A deterministic secrets scan over cassettes (R8): key shapes, canaries, unscrubbed auth headers,
signed-URL query values, JWTs and long random tokens in auth-like fields.

The recorder (:mod:`kling_core.testing.record`) scrubs with the same rules it is checked by:
:func:`signed_url_params` and :func:`is_auth_field` decide what it replaces with ``<SECRET>``.
A finding names the file, the JSON path and what kind of value sits there, never the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

from kling_core.testing.cassettes import SECRET
from kling_core.testing.matching import AUTH_HEADERS

# A JWT's header and payload (base64url JSON: "ey..."); the scan also wants a signature, the
# recorder scrubs one with any (or no) signature.
_JWT_HEAD = r"\bey[A-Za-z0-9_\-]{10,}\.ey[A-Za-z0-9_\-]{10,}\."

# Value shapes that are credentials on the hosts we know, or our own canary.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a canary credential", re.compile(r"sk-CANARY-[0-9A-Za-z-]+")),
    ("an fal-style 'Key <token>' credential", re.compile(r"\bKey\s+(?!<SECRET>)[A-Za-z0-9_\-:.]{16,}")),
    ("a bearer JWT", re.compile(r"\bBearer\s+ey[A-Za-z0-9_\-]{8,}")),
    ("a JWT", re.compile(_JWT_HEAD + r"[A-Za-z0-9_\-]{10,}")),
    ("a Segmind key (SG_...)", re.compile(r"\bSG_[A-Za-z0-9]{8,}")),
    ("an sk- API key", re.compile(r"\bsk-(?!CANARY)[A-Za-z0-9_\-]{16,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
)
# A JWT anywhere in a string: the recorder replaces each with <SECRET>.
JWT_RE = re.compile(_JWT_HEAD + r"[A-Za-z0-9_\-]*")
# "Bearer <token>" / "Key <token>" / "Token <token>" in free text.
SCHEME_TOKEN_RE = re.compile(r"\b(?P<scheme>Bearer|Key|Token)\s+(?P<token>(?!<SECRET>)[A-Za-z0-9_\-.~+/:=]{8,})")
# Header values that are fine without the marker (no credential can hide in them).
_SCRUBBED = re.compile(r"^(?:[A-Za-z]+\s+)?<SECRET>$")

# --- signed URLs ------------------------------------------------------------------------
# Query parameters whose value is a signature, a credential or a token (lower case): S3 and
# other SigV4 URLs, GCS (v2 and v4), CloudFront, Azure SAS, and tokens passed in the query.
SIGNED_QUERY_PARAMS: frozenset[str] = frozenset({
    "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential", "googleaccessid",
    "signature", "sig", "policy", "key-pair-id",
    "token", "access_token", "id_token", "refresh_token", "auth", "jwt",
    "key", "api_key", "apikey", "client_secret", "password", "secret",
})
# Parameters that only matter beside a signature (its signed expiry): scrubbed in that case.
PAIRED_QUERY_PARAMS: frozenset[str] = frozenset({"expires"})
SIGNATURE_QUERY_PARAMS: frozenset[str] = frozenset({"signature", "sig", "x-amz-signature", "x-goog-signature"})
_ENCODED_SECRET = "%3CSECRET%3E"

# A URL's query: from "?" to a fragment, whitespace or a quote (a <SECRET> marker included).
_QUERY = re.compile(r"\?(?P<query>(?:<SECRET>|[^\s\"'<>#])*)")
_PARAM = re.compile(r"(?:^|&)(?P<name>[^&=]*)=(?P<value>[^&]*)")
# A URL nested in a query value, percent-encoded once (a webhook URL in ?fal_webhook=...).
_NESTED_QUERY = re.compile(r"%3F(?P<query>(?:(?!%23).)*)", re.IGNORECASE)
_NESTED_PARAM = re.compile(r"(?:^|%26)(?P<name>(?:(?!%26|%3D).)*)%3D(?P<value>(?:(?!%26).)*)", re.IGNORECASE)


class QueryParam(NamedTuple):
    """One sensitive query parameter found in a string: its name and where its value sits."""

    name: str
    start: int
    end: int
    value: str


def is_scrubbed(value: str) -> bool:
    """Empty, or nothing but ``<SECRET>`` markers (percent-encoded or not)."""
    return not unquote(value.replace(_ENCODED_SECRET, SECRET)).replace(SECRET, "").strip()


def _sensitive(names: list[str]) -> list[bool]:
    lowered = [unquote(n).strip().lower() for n in names]
    signed = any(n in SIGNATURE_QUERY_PARAMS for n in lowered)
    return [n in SIGNED_QUERY_PARAMS or (signed and n in PAIRED_QUERY_PARAMS) for n in lowered]


def _params_in(query: str, offset: int, pattern: re.Pattern[str]) -> list[tuple[str, int, int, str]]:
    found = []
    for m in pattern.finditer(query):
        found.append((m.group("name"), offset + m.start("value"), offset + m.end("value"), m.group("value")))
    return found


def signed_url_params(text: str) -> list[QueryParam]:
    """Every query parameter in ``text`` that holds a signature, credential or token.

    Any URL counts, wherever it sits in the string, and one level of URL nested
    percent-encoded in a query value. ``Expires`` counts when a signature sits beside it.
    """
    out: list[QueryParam] = []
    for query in _QUERY.finditer(text):
        params = _params_in(query.group("query"), query.start("query"), _PARAM)
        for (name, start, end, value), hit in zip(params, _sensitive([p[0] for p in params]), strict=True):
            if hit:
                out.append(QueryParam(unquote(name), start, end, value))
                continue
            for nested in _NESTED_QUERY.finditer(value):
                inner = _params_in(nested.group("query"), start + nested.start("query"), _NESTED_PARAM)
                for (n, s, e, v), inner_hit in zip(inner, _sensitive([p[0] for p in inner]), strict=True):
                    if inner_hit:
                        out.append(QueryParam(unquote(n), s, e, v))
    return out


def scrub_signed_urls(text: str) -> tuple[str, list[str]]:
    """``text`` with each signed-URL query value replaced by ``<SECRET>``; the values replaced."""
    removed = []
    for param in sorted(signed_url_params(text), key=lambda p: p.start, reverse=True):
        if not is_scrubbed(param.value):
            removed.append(unquote(param.value))
            text = text[: param.start] + SECRET + text[param.end :]
    return text, removed


# --- auth-like fields -------------------------------------------------------------------
# JSON keys and header names whose value is a credential (normalized: lower case, "-" -> "_").
_AUTH_FIELD = re.compile(
    r"(?:^|_)(?:token|secret|password|passwd|credentials?|authorization|signature|jwt|bearer"
    r"|api_?key|access_key|secret_key|private_key|session_token|security_token)$"
)
# A segment of a token: split on the separators keys use between words.
_SEGMENTS = re.compile(r"[-_.:/+=~]")


def is_auth_field(name: str) -> bool:
    """A JSON key or header name that holds a credential: ``token``, ``access_token``,
    ``x-amz-security-token``, ``api_key``, ``client_secret`` ... (not ``token_type``)."""
    return _AUTH_FIELD.search(name.strip().lower().replace("-", "_")) is not None


def looks_random(value: str) -> bool:
    """A long machine-made token (not a readable placeholder such as ``storage-token-example-0001``).

    At least 16 characters without spaces (after a scheme word), holding a run of 12 or more
    that mixes letters and digits, or of 20 or more that mixes cases.
    """
    token = value.strip()
    parts = token.split()
    if len(parts) == 2 and parts[0].isalpha():
        token = parts[1]  # "Bearer abc..."
    if len(token) < 16 or any(c.isspace() for c in token):
        return False
    for segment in _SEGMENTS.split(token):
        has_digit = any(c.isdigit() for c in segment)
        has_alpha = any(c.isalpha() for c in segment)
        if len(segment) >= 12 and has_digit and has_alpha:
            return True
        if len(segment) >= 20 and any(c.islower() for c in segment) and any(c.isupper() for c in segment):
            return True
    return False


# --- the scan ---------------------------------------------------------------------------


def _nodes(doc: Any, path: str = "", key: str | None = None) -> Iterator[tuple[str, str | None, Any]]:
    """Every (path, key, value) of the document, parents first; ``key`` is None for the root and list items."""
    yield path, key, doc
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            yield from _nodes(v, f"{path}.{k}" if path else str(k), str(k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, f"{path}[{i}]")


def _strings(doc: Any) -> Iterator[tuple[str, str]]:
    """Every (path, text) of every string in the document, object keys included."""
    for path, key, value in _nodes(doc):
        if key is not None:
            yield path, key
        if isinstance(value, str):
            yield path, value


def _fields(doc: Any) -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of every object in the document (header objects included)."""
    for path, key, value in _nodes(doc):
        if key is not None:
            yield path, key, value


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
    """Every secret-like value in a cassette document, as ``path: what`` lines (never the value)."""
    findings = []
    extras = [v for v in extra_values if v]
    for path, text in _strings(doc):
        for label, pattern in SECRET_PATTERNS:
            if pattern.search(text):
                findings.append(f"{path}: holds {label}")
        for value in extras:
            if value in text:
                findings.append(f"{path}: holds a known credential value")
        for param in signed_url_params(text):
            if not is_scrubbed(param.value):
                findings.append(f"{path}: holds a signed-URL query value ({param.name}=...; scrub it to {SECRET})")
        for m in SCHEME_TOKEN_RE.finditer(text):
            if looks_random(m.group("token")):
                findings.append(f"{path}: holds a '{m.group('scheme')} <token>' credential")
    for path, name, value in _fields(doc):
        if isinstance(value, str) and is_auth_field(name) and SECRET not in value and looks_random(value):
            findings.append(f"{path}: auth-like field holds a long random token (scrub it to {SECRET})")
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
