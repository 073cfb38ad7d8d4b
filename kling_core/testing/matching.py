"""Compare a request a plugin sent with the one a cassette recorded; explain every difference."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from kling_core.http.redact import SENSITIVE_HEADERS
from kling_core.testing.cassettes import SECRET, RecordedRequest

# Header names that carry credentials on the hosts we know (R7/R8).
AUTH_HEADERS = SENSITIVE_HEADERS  # one list: what logs mask is what cassettes keep as <SECRET>
_TOKEN = r"(\S+)"  # a group: secret_values reads what stood for each marker
# A scheme word (Bearer, Key, Token, Basic): letters only, so a bare key is never taken for one.
_SCHEME_WORD = re.compile(r"^[A-Za-z]{1,20}$")


def secret_pattern(recorded: str) -> re.Pattern[str]:
    """``Key <SECRET>`` matches ``Key`` followed by any non-empty token without whitespace."""
    parts = [re.escape(p) for p in recorded.split(SECRET)]
    return re.compile("^" + _TOKEN.join(parts) + "$", re.DOTALL)


def secret_values(recorded: str, actual: str) -> list[str]:
    """What ``actual`` sent in place of each ``<SECRET>`` of ``recorded`` (empty: no match).

    The pattern only says a token was sent; :mod:`kling_core.testing.credential_check` checks
    that it is the test's key.
    """
    m = secret_pattern(recorded).match(actual)
    return list(m.groups()) if m else []


def mask_credential(value: str) -> str:
    """An auth header value fit to print: the scheme word kept, every token after it masked.

    ``Token sk-abc`` -> ``Token <SECRET>``, so a wrong scheme shows and the key does not.
    """
    parts = value.split()
    if len(parts) >= 2 and _SCHEME_WORD.match(parts[0]):
        return " ".join([parts[0], *[SECRET] * (len(parts) - 1)])
    return SECRET if value.strip() else value


def value_matches(recorded: str, actual: str) -> bool:
    if SECRET not in recorded:
        return recorded == actual
    return secret_pattern(recorded).match(actual) is not None


def pretty(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def json_diff(expected: Any, actual: Any, *, labels: tuple[str, str] = ("recorded", "sent")) -> str:
    lines = difflib.unified_diff(
        pretty(expected).splitlines(), pretty(actual).splitlines(), labels[0], labels[1], lineterm="", n=2
    )
    return "\n".join(lines)


def subset_problems(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` fails to contain ``expected`` (objects: recorded keys only; lists: same length)."""
    here = path or "(body)"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{here}: expected an object, got {pretty(actual)}"]
        out = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{sub}: missing (expected {pretty(value)})")
            else:
                out += subset_problems(value, actual[key], sub)
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{here}: expected {pretty(expected)}, got {pretty(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += subset_problems(e, a, f"{path}[{i}]")
        return out
    if isinstance(expected, str) and isinstance(actual, str) and value_matches(expected, actual):
        return []
    if expected == actual and type(expected) is type(actual):
        return []
    numbers = (float, int)
    if (
        isinstance(expected, numbers) and isinstance(actual, numbers)
        and not isinstance(actual, bool) and not isinstance(expected, bool) and expected == actual
    ):
        return []  # 40 and 40.0 are the same JSON number
    return [f"{here}: expected {pretty(expected)}, got {pretty(actual)}"]


def _split_url(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    return base, sorted(parse_qsl(parts.query, keep_blank_values=True))


def request_body_json(request: httpx.Request) -> tuple[bool, Any]:
    """(has a body, parsed JSON or the raw text)."""
    content = request.content
    if not content:
        return False, None
    try:
        return True, json.loads(content)
    except ValueError:
        return True, content.decode("utf-8", "replace")


def request_problems(recorded: RecordedRequest, actual: httpx.Request) -> list[str]:
    """Every way ``actual`` differs from ``recorded`` (empty: it matches)."""
    problems: list[str] = []
    if actual.method != recorded.method:
        problems.append(f"method: recorded {recorded.method}, sent {actual.method}")
    rec_base, rec_query = _split_url(recorded.url)
    act_base, act_query = _split_url(str(actual.url))
    if rec_base != act_base:
        problems.append(f"url: recorded {rec_base}, sent {act_base}")
    if recorded.match_query == "exact" and rec_query != act_query:
        problems.append(f"query: recorded {rec_query}, sent {act_query}")
    for name, value in recorded.headers.items():
        sent = actual.headers.get(name)
        if sent is None:
            problems.append(f"header {name}: expected {value!r}, not sent")
        elif not value_matches(value, sent):
            shown = mask_credential(sent) if name in AUTH_HEADERS else sent
            problems.append(f"header {name}: expected {value!r}, got {shown!r}")
    if recorded.match_json != "ignore":
        has_body, body = request_body_json(actual)
        if not recorded.has_json:
            if has_body:
                problems.append(f"body: none recorded, sent {pretty(body)}")
        elif not has_body:
            problems.append("body: recorded a JSON body, sent none")
        elif isinstance(body, str):
            problems.append(f"body: recorded JSON, sent non-JSON {body[:200]!r}")
        elif recorded.match_json == "exact":
            if subset_problems(recorded.json, body) or _extra_keys(recorded.json, body):
                problems.append("json body differs (exact match):\n" + json_diff(recorded.json, body))
        else:
            sub = subset_problems(recorded.json, body)
            if sub:
                problems.append("json body differs (subset match): " + "; ".join(sub) + "\n" + json_diff(recorded.json, body))
    return problems


def _extra_keys(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds object keys ``expected`` lacks (subset_problems ignores them)."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        if set(actual) - set(expected):
            return True
        return any(_extra_keys(expected[k], actual[k]) for k in expected if k in actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return any(_extra_keys(e, a) for e, a in zip(expected, actual, strict=False))
    return False


def canary_leaks(request: httpx.Request, canaries: Iterable[str]) -> list[str]:
    """Places a credential went other than an auth header: URL, other headers, body."""
    out = []
    for canary in canaries:
        if canary in str(request.url):
            out.append("the credential appears in the URL")
        for name, value in request.headers.items():
            if name.lower() not in AUTH_HEADERS and canary in value:
                out.append(f"the credential appears in header {name!r}")
        if canary.encode() in (request.content or b""):
            out.append("the credential appears in the request body")
    return out
