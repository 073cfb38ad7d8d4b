"""Property tests: whatever the network does, a submit reaches the host at most once, and a
status call never exceeds its retry budget or sleeps outside its bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from kling_core.errors import KlingError, SubmitUncertainError
from kling_core.http.base import SUBMIT_CONNECT_RETRIES
from kling_core.provider import JobHandle
from kling_core.settings import PollSettings
from tests.test_http_provider import REQ, STATUS, SUBMIT, make  # the Demo host

PRE_SEND = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout]
POST_SEND = [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteTimeout, httpx.ReadError]

outcome = st.one_of(
    st.sampled_from(PRE_SEND).map(lambda e: ("pre", e)),
    st.sampled_from(POST_SEND).map(lambda e: ("post", e)),
    st.sampled_from([200, 202, 400, 401, 408, 409, 429, 500, 502, 503, 504]).map(lambda s: ("status", s)),
)


def _respond(kind: str, what: Any, request: httpx.Request) -> httpx.Response:
    if kind in ("pre", "post"):
        raise what("simulated", request=request)
    if 200 <= what < 300:
        return httpx.Response(what, json={"id": "j1"})
    return httpx.Response(what, json={"error": "x"}, headers={"retry-after": "1"})


@settings(max_examples=60, deadline=None)
@given(script=st.lists(outcome, min_size=1, max_size=8))
def test_a_submit_reaches_the_host_at_most_once(script: list[tuple[str, Any]]) -> None:
    import respx

    calls: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = script[min(len(calls), len(script) - 1)]
        calls.append(step)
        return _respond(*step, request)

    router = respx.Router()
    router.post(SUBMIT).mock(side_effect=handler)
    provider, sleeps = make(router)

    async def go() -> Any:
        try:
            return await provider.submit(REQ)
        except KlingError as exc:
            return exc
        finally:
            await provider.aclose()

    result = asyncio.run(go())
    reached = [c for c in calls if c[0] != "pre"]
    assert len(reached) <= 1, calls
    assert len(calls) <= SUBMIT_CONNECT_RETRIES + 1 and len(sleeps) == len(calls) - 1
    if reached and reached[0][0] == "post":
        assert isinstance(result, SubmitUncertainError) and result.client_key == REQ.client_key
    if isinstance(result, JobHandle):
        assert reached == [c for c in calls if c[0] == "status"] and 200 <= reached[0][1] < 300


@settings(max_examples=60, deadline=None)
@given(
    script=st.lists(outcome, min_size=1, max_size=10),
    retries=st.integers(min_value=0, max_value=4),
    hint=st.one_of(st.none(), st.sampled_from(["0", "3", "119", "121", "-1", "nan", "soon"])),
)
def test_status_calls_stay_within_budget(script: list[tuple[str, Any]], retries: int, hint: str | None) -> None:
    import respx

    calls: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = script[min(len(calls), len(script) - 1)]
        calls.append(step)
        kind, what = step
        if kind != "status":
            raise what("simulated", request=request)
        if 200 <= what < 300:
            return httpx.Response(what, json={})
        headers = {"retry-after": hint} if hint is not None else {}
        return httpx.Response(what, json={"error": "x"}, headers=headers)

    router = respx.Router()
    router.get(STATUS).mock(side_effect=handler)
    poll = PollSettings(initial=1.0, factor=2.0, max=8.0, jitter=0.25, status_retries=retries, max_retry_after=120.0)
    provider, sleeps = make(router, poll=poll)

    async def go() -> Any:
        try:
            return await provider.status(JobHandle(provider="demo", job_id="j1"))
        except KlingError as exc:
            return exc
        finally:
            await provider.aclose()

    asyncio.run(go())
    assert 1 <= len(calls) <= retries + 1
    assert len(sleeps) == len(calls) - 1
    assert all(0 <= s <= 120.0 for s in sleeps)
