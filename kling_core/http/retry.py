"""Which failed HTTP calls may be retried, and after how long: one pure function.

Phases name where a call failed, because the same failure means different things there:
a connect error on a submit proves the host never saw it (safe to retry); a read timeout on a
submit may have created a paid job (never retried). Status/result GETs and downloads are
idempotent, so transient failures there are retried within a budget.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Literal

import attrs
import httpx

from kling_core.backoff import backoff_delays as backoff_delays  # pure; re-exported here
from kling_core.errors import NOT_SENT as NOT_SENT  # re-exported: the HTTP layer raises it
from kling_core.settings import PollSettings

Phase = Literal["submit_pre_send", "submit_post_send", "status", "result", "download"]
PHASES: tuple[str, ...] = ("submit_pre_send", "submit_post_send", "status", "result", "download")

# Failures that happen before a byte of the request reached the host: no connection could be
# made, or none came free from the pool in time (the request never left the process).
PRE_SEND_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, *range(500, 600)})


@attrs.frozen
class Decision:
    """``retry``: may the call be made again. ``delay``: the host's wait hint in seconds, if any.

    A ``delay`` with ``retry=False`` means the host asked for a wait longer than we accept.
    """

    retry: bool
    delay: float | None = None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Returns None for anything unusable (negative, non-finite, garbage), so the caller falls
    back to its own backoff rather than trusting a nonsense hint.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        parsed = email.utils.parsedate_tz(text)
        if parsed is None:
            return None
        try:
            stamp = email.utils.mktime_tz(parsed)
        except (OverflowError, ValueError):
            return None
        current = time.time() if now is None else now
        return max(0.0, stamp - current)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def classify(
    phase: Phase | str,
    outcome: int | BaseException,
    headers: Mapping[str, str] | httpx.Headers | None = None,
    *,
    max_retry_after: float = PollSettings().max_retry_after,
    now: float | None = None,
) -> Decision:
    """Decide whether a failed call may be repeated.

    ``outcome`` is the HTTP status code of the response, or the exception raised by the
    transport. 2xx/3xx are not failures and are never retried.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    if phase == "submit_post_send":
        return Decision(False)  # the host may have created the job: never resubmit
    if isinstance(outcome, BaseException):
        if phase == "submit_pre_send":
            return Decision(isinstance(outcome, PRE_SEND_ERRORS))
        return Decision(isinstance(outcome, httpx.TransportError))
    if phase == "submit_pre_send":
        return Decision(False)  # a status code means the request was sent
    if outcome not in RETRYABLE_STATUSES:
        return Decision(False)
    hint = parse_retry_after(_header(headers, "retry-after"), now=now)
    if hint is not None and hint > max_retry_after:
        return Decision(False, hint)
    return Decision(True, hint)


def _header(headers: Mapping[str, str] | httpx.Headers | None, name: str) -> str | None:
    if headers is None:
        return None
    if isinstance(headers, httpx.Headers):
        value: str | None = headers.get(name)
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
