"""The retry classifier, table-tested: every status × phase, Retry-After parsing, backoff."""

from __future__ import annotations

import email.utils
import random

import httpx
import pytest

from kling_core.http.retry import PHASES, Decision, backoff_delays, classify, parse_retry_after
from kling_core.settings import PollSettings

IDEMPOTENT = ("status", "result", "download")
RETRYABLE = {408, 429, *range(500, 600)}


@pytest.mark.parametrize("phase", PHASES)
def test_every_status_in_every_phase(phase: str) -> None:
    for status in range(100, 600):
        decision = classify(phase, status, {})
        # On a submit, a status code means the request was sent: never repeated.
        expected = phase in IDEMPOTENT and status in RETRYABLE
        assert decision.retry is expected, (phase, status)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.WriteTimeout("slow write"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadError("reset"),
        httpx.PoolTimeout("pool"),
    ],
)
def test_transport_errors_by_phase(exc: Exception) -> None:
    pre_send = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))  # never sent
    assert classify("submit_pre_send", exc).retry is pre_send
    assert classify("submit_post_send", exc).retry is False
    for phase in IDEMPOTENT:
        assert classify(phase, exc).retry is True


def test_non_transport_exception_is_not_retried() -> None:
    for phase in PHASES:
        assert classify(phase, ValueError("bug")).retry is False


def test_submit_post_send_never_retries_whatever_the_hint() -> None:
    for status in (408, 429, 500, 502, 503, 504):
        assert classify("submit_post_send", status, {"Retry-After": "1"}) == Decision(False)
    assert classify("submit_pre_send", 503, {"Retry-After": "1"}).retry is False


def test_unknown_phase_is_a_bug() -> None:
    with pytest.raises(ValueError):
        classify("upload", 500)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20", 20.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-10", None),
        ("121", 121.0),
        ("inf", None),
        ("-inf", None),
        ("nan", None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("20 seconds", None),
        (None, None),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
        ("Wed, 99 Foo 2026 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize(
    ("header", "retry", "delay"),
    [
        ("20", True, 20.0),
        ("-10", True, None),  # nonsense hint ignored: own backoff
        ("121", False, 121.0),  # longer than max_retry_after (120): stop
        ("120", True, 120.0),
        ("inf", True, None),
        ("nan", True, None),
        ("garbage", True, None),
    ],
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_classification(header: str, retry: bool, delay: float | None, status: int) -> None:
    decision = classify("status", status, {"Retry-After": header}, max_retry_after=120.0)
    assert decision.retry is retry
    assert decision.delay == delay


def test_retry_after_http_date_and_httpx_headers() -> None:
    date = email.utils.formatdate(NOW + 10, usegmt=True)
    decision = classify("result", 429, httpx.Headers({"retry-after": date}), now=NOW)
    assert decision.retry and decision.delay == pytest.approx(10.0, abs=1.0)
    far = email.utils.formatdate(NOW + 3600, usegmt=True)
    assert classify("result", 429, {"retry-after": far}, now=NOW).retry is False


def test_backoff_grows_caps_and_jitters_within_bounds() -> None:
    poll = PollSettings(initial=1.0, factor=1.5, max=20.0, jitter=0.25)
    delays = backoff_delays(poll, random.Random(7))
    seq = [next(delays) for _ in range(30)]
    nominal = 1.0
    for d in seq:
        capped = min(nominal, 20.0)
        assert capped * 0.75 - 1e-9 <= d <= min(20.0, capped * 1.25) + 1e-9
        nominal *= 1.5
    assert max(seq) <= 20.0
    assert seq[-1] >= 15.0  # reached the cap region


def test_backoff_is_deterministic_with_a_seed_and_exact_without_jitter() -> None:
    poll = PollSettings(initial=2.0, factor=2.0, max=10.0, jitter=0.0)
    assert [d for d, _ in zip(backoff_delays(poll), range(5), strict=False)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    a = backoff_delays(PollSettings(), random.Random(1))
    b = backoff_delays(PollSettings(), random.Random(1))
    assert [next(a) for _ in range(10)] == [next(b) for _ in range(10)]
