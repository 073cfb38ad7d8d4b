"""Keep credentials out of logs: a scrubbing log filter and redacted request/response lines.

httpx logs full URLs at INFO and httpcore logs headers at DEBUG; a custom header such as
``x-api-key`` is even shown in clear by ``httpx.Headers.__repr__``. So every record that
reaches the ``httpx``, ``httpcore`` and ``kling_core`` loggers is scrubbed of every
registered secret value and of the value part of any auth-looking header.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping

import httpx

MASK = "***"
# Header names whose values are credentials on some host (lower case).
SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-key", "api-key", "cookie", "set-cookie"}
)
# Query parameters that may carry tokens (signed URLs, webhook URLs with secrets).
SENSITIVE_QUERY: frozenset[str] = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "signature", "sig", "x-amz-signature",
     "x-goog-signature", "fal_webhook"}
)
LOGGER_NAMES: tuple[str, ...] = ("httpx", "httpcore", "kling_core")
# httpcore logs on these children; a logger's filters do not apply to its children's records.
_KNOWN_CHILDREN: tuple[str, ...] = (
    "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks",
)

_lock = threading.Lock()
_secrets: set[str] = set()
# "Authorization: Key abc", "'x-api-key': 'abc'", "(b'x-api-key', b'abc')" and similar.
_NAMES = "|".join(re.escape(h) for h in sorted(SENSITIVE_HEADERS))
_HEADER_RE = re.compile(
    r"(?P<name>\b(?:" + _NAMES + r")\b['\"]?\s*[:=,]\s*(?:b(?=['\"]))?['\"]?)"
    r"(?P<value>(?:(?:Key|Bearer|Basic|Token)\s+)?[^'\"\s,)\]}]+)",
    re.IGNORECASE,
)


def register_secret(value: str) -> None:
    """Remember a secret value so every log record is scrubbed of it (short values ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with every registered secret and auth-header value masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _HEADER_RE.sub(lambda m: m.group("name") + MASK, text)


def redact_headers(headers: httpx.Headers | Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A plain dict of the headers with every sensitive value masked."""
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    return {k: (MASK if k.lower() in SENSITIVE_HEADERS else scrub(v)) for k, v in items}


def redact_url(url: httpx.URL | str) -> str:
    """The URL without userinfo and with token-like query values masked."""
    u = httpx.URL(str(url))
    if u.userinfo:
        u = u.copy_with(username=None, password=None)
    if u.query:
        params = [(k, MASK if k.lower() in SENSITIVE_QUERY else v) for k, v in u.params.multi_items()]
        u = u.copy_with(params=params)
    return scrub(str(u))


class RedactingFilter(logging.Filter):
    """Scrubs secrets from a record's message (args folded in) and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(exc_text)
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


def install_redaction(names: Iterable[str] = LOGGER_NAMES) -> RedactingFilter:
    """Attach the scrubbing filter to these loggers and all their existing children.

    Idempotent. Also call it after configuring handlers, or add the returned filter to a
    handler to cover loggers created later.
    """
    wanted = tuple(names)
    manager = logging.Logger.manager
    targets = set(wanted) | {c for c in _KNOWN_CHILDREN if c.split(".")[0] in wanted}
    targets |= {
        name for name in list(manager.loggerDict)
        if any(name.startswith(base + ".") for base in wanted)
    }
    for name in sorted(targets):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    return _FILTER
