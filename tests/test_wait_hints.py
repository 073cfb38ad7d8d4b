"""A host's wait hint is honoured wherever the client waits on the host, never only Retry-After.

Status GETs (``HttpProvider.send_get``) sleep the host's documented stand-ins for Retry-After
(Segmind's ``x-rate-limit-reset-at-utc``, Replicate's "resets in ~30s" in the body text) and
stop with a retryable RateLimitedError naming a wait over ``max_retry_after``; fal's status
stream is not reopened sooner than a 429's Retry-After, and is given up on for one too long.
Time is virtual: the provider's injected sleep records each wait, its clock is fixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest
from kling_core_plugins.replicate import ReplicateProvider
from kling_core_plugins.segmind import SegmindProvider
from test_status_stream import STREAM, Host, doc, handle, provider

from kling_core.contract.status import Queued, Running
from kling_core.errors import RateLimitedError
from kling_core.http.stream import watch
from kling_core.provider import JobHandle, Provider
from kling_core.settings import PollSettings
from kling_core.testing.doubles import build_provider, canary_credentials

NOW = 1_900_000_000.0
LIMIT = PollSettings().max_retry_after  # 120 s: the default these providers poll with
SEGMIND_STATUS = "https://api.segmind.com/v2/requests/r1/status"
RESET = "x-rate-limit-reset-at-utc"


class Waits:
    """The provider's sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def scripted(cls: type[Provider], answers: list[httpx.Response], waits: Waits) -> tuple[Provider, list[httpx.Request]]:
    """A provider whose host gives ``answers`` in turn (and records each request)."""
    queue: Iterator[httpx.Response] = iter(answers)
    sent: list[httpx.Request] = []

    def host(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return next(queue)

    made = build_provider(cls, environ=canary_credentials(cls), transport=httpx.MockTransport(host),
                          sleep=waits, clock=lambda: NOW)
    return made, sent


def segmind_handle() -> JobHandle:
    return JobHandle(provider="segmind", job_id="r1", model="kling-o1", urls={"status": SEGMIND_STATUS})


QUEUED = httpx.Response(200, json={"status": "QUEUED", "request_id": "r1"})


# -- status GETs ------------------------------------------------------------------------------
def test_segmind_status_429_waits_until_the_limit_resets() -> None:
    waits = Waits()
    p, sent = scripted(SegmindProvider, [
        httpx.Response(429, headers={RESET: str(int(NOW + 60))}, json={"error": "slow down"}), QUEUED], waits)
    status = asyncio.run(p.status(segmind_handle()))
    assert isinstance(status, Queued)
    assert waits.slept == [60.0] and len(sent) == 2


def test_a_retry_after_header_wins_over_the_reset_header() -> None:
    waits = Waits()
    p, _ = scripted(SegmindProvider, [
        httpx.Response(429, headers={"retry-after": "5", RESET: str(int(NOW + 60))}, json={"error": "slow down"}),
        QUEUED], waits)
    assert isinstance(asyncio.run(p.status(segmind_handle())), Queued)
    assert waits.slept == [5.0]


def test_a_reset_too_far_off_stops_at_once_with_the_wait_named() -> None:
    waits = Waits()
    p, sent = scripted(SegmindProvider, [
        httpx.Response(429, headers={RESET: str(int(NOW + 600))}, json={"error": "slow down"}), QUEUED], waits)
    with pytest.raises(RateLimitedError) as info:
        asyncio.run(p.status(segmind_handle()))
    assert info.value.retry_after == 600.0 and info.value.retryable
    assert waits.slept == [] and len(sent) == 1  # no retry: the caller decides when


@pytest.mark.parametrize(("seconds", "retried"), [(30, True), (LIMIT + 180, False)])
def test_replicate_status_429_reads_the_wait_from_its_text(seconds: float, retried: bool) -> None:
    waits = Waits()
    throttled = httpx.Response(429, json={
        "title": "Request was throttled", "status": 429,
        "detail": f"Request was throttled. Your rate limit resets in ~{seconds:g}s."})
    p, sent = scripted(ReplicateProvider, [throttled, httpx.Response(200, json={"id": "p1", "status": "processing"})],
                       waits)
    assert isinstance(p, ReplicateProvider)
    job = p.resume("p1")
    if retried:
        assert isinstance(asyncio.run(p.status(job)), Running)
        assert waits.slept == [seconds]
    else:
        with pytest.raises(RateLimitedError) as info:
            asyncio.run(p.status(job))
        assert info.value.retry_after == seconds and info.value.retryable
        assert waits.slept == [] and len(sent) == 1


# -- fal's status stream ------------------------------------------------------------------------
def refused(retry_after: str | None, code: int = 429) -> Callable[[], httpx.Response]:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return lambda: httpx.Response(code, headers=headers, json={"detail": "slow down"})


@pytest.mark.parametrize("code", [429, 503])
def test_the_stream_is_not_reopened_before_its_retry_after(code: int) -> None:
    host = Host([doc("IN_PROGRESS")], refused("60", code))
    waits = Waits()
    why = asyncio.run(watch(provider(host), handle(), on_status=lambda s: None, sleep=waits))
    assert why == f"the host answered {code}"
    reopened = host.count(STREAM) - 1
    assert reopened >= 1 and waits.slept == [60.0] * reopened  # each reopen waited the hint, not the backoff


def test_a_stream_retry_after_too_long_gives_the_stream_up_at_once() -> None:
    host = Host([doc("IN_PROGRESS")], refused(str(int(LIMIT + 180))))
    waits = Waits()
    why = asyncio.run(watch(provider(host), handle(), on_status=lambda s: None, sleep=waits))
    assert why is not None and "max_retry_after" in why and f"{LIMIT + 180:g} s" in why
    assert host.count(STREAM) == 1 and waits.slept == []  # the job polls on its own schedule


def test_a_stream_lost_without_a_hint_reopens_after_the_backoff() -> None:
    host = Host([doc("IN_PROGRESS")], refused(None))
    waits = Waits()
    asyncio.run(watch(provider(host), handle(), on_status=lambda s: None, sleep=waits))
    assert len(waits.slept) == host.count(STREAM) - 1 >= 1
    assert all(0 < s < 60 for s in waits.slept)  # the poll backoff, no hint to wait for
