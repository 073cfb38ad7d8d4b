"""Kling auth against a host whose clock is off from ours (issue 10 item 7).

The fake host keeps its own clock (ours plus an offset), checks each token's signature with
PyJWT and its ``nbf``/``exp`` against that clock, as Kling does, and answers 1003/1004 when
the token is outside its window. Offsets of seconds to minutes either way must cost nothing:
submits succeed and a poll loop spanning several token lifetimes never dies on 1004. An
offset beyond what a fresh token can cover gives one named error after exactly one retry.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from kling_core_plugins.kling import KlingProvider, jwt

from kling_core.contract.models import EditRequest
from kling_core.contract.status import Running
from kling_core.errors import AuthenticationError
from kling_core.http.tokens import host_offset, span
from kling_core.provider import ProviderContext
from kling_core.settings import ProviderSettings

AK = "ak-CANARY-4f1c0e2a9b7d"
SK = "sk-CANARY-9d8e7f6a5b4c3a2b1c0d9e8f7a6b5c4d"  # 32+ bytes: PyJWT's recommended minimum
REQ = EditRequest(prompt="Make it snow", video="https://media.example.com/v.mp4", client_key="edit-0001")
MIN = 60.0
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_763_700_000.0

    def __call__(self) -> float:
        return self.now


class ClockedHost:
    """Kling's omni-video API with a clock ``offset`` seconds from ours (positive: ahead)."""

    def __init__(self, clock: Clock, offset: float, *, send_date: bool = True, latency: float = 0.4) -> None:
        self.clock = clock
        self.offset = offset
        self.send_date = send_date
        self.latency = latency
        self.requests: list[tuple[str, str]] = []  # (method, outcome: "ok" or the refusal code)

    def now(self) -> float:
        return self.clock.now + self.offset

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.clock.now += self.latency / 2
        host_now = self.now()
        token = request.headers["authorization"].removeprefix("Bearer ")
        # The signature and the claims' presence, through PyJWT; the time window by the host's clock
        # (PyJWT would check it against the real time).
        claims = pyjwt.decode(token, SK, algorithms=["HS256"],
                              options={"verify_exp": False, "verify_nbf": False, "require": ["iss", "exp", "nbf"]})
        assert claims["iss"] == AK
        headers = {"date": email.utils.formatdate(host_now, usegmt=True)} if self.send_date else {}
        self.clock.now += self.latency / 2
        if host_now < claims["nbf"]:
            code, message = 1003, "Authorization is not active"
        elif host_now >= claims["exp"]:
            code, message = 1004, "Authorization has expired"
        else:
            self.requests.append((request.method, "ok"))
            task = {"task_id": "867", "task_status": "submitted" if request.method == "POST" else "processing",
                    "task_info": {"external_task_id": "edit-0001"}, "created_at": 1, "updated_at": 1}
            return httpx.Response(200, headers=headers,
                                  json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": task})
        self.requests.append((request.method, str(code)))
        return httpx.Response(401, headers=headers, json={"code": code, "message": message, "request_id": "r"})

    def refusals(self) -> list[str]:
        return [outcome for _, outcome in self.requests if outcome != "ok"]


def make_provider(host: ClockedHost, clock: Clock) -> KlingProvider:
    async def sleep(seconds: float) -> None:
        clock.now += seconds  # waiting moves both clocks

    ctx = ProviderContext(
        name="kling", settings=ProviderSettings(), environ={"KLING_ACCESS_KEY": AK, "KLING_SECRET_KEY": SK},
        transport=httpx.MockTransport(host), sleep=sleep, clock=clock,
    )
    return KlingProvider(ctx)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


OFFSETS = [-10 * MIN, -2 * MIN, -6.0, 6.0, 2 * MIN, 10 * MIN]


@pytest.mark.parametrize("offset", OFFSETS, ids=lambda o: f"host{o:+.0f}s")
def test_submits_succeed_with_the_host_clock_off_by_minutes(offset: float) -> None:
    clock = Clock()
    host = ClockedHost(clock, offset)
    p = make_provider(host, clock)

    async def go() -> None:
        try:
            for _ in range(5):  # several submits, some with a cached token an hour old
                handle = await p.submit(REQ)
                assert handle.job_id == "867"
                clock.now += 25 * MIN
        finally:
            await p.aclose()

    run(go())
    assert host.requests == [("POST", "ok")] * 5


@pytest.mark.parametrize("offset", OFFSETS, ids=lambda o: f"host{o:+.0f}s")
def test_a_poll_loop_longer_than_the_token_lifetime_never_meets_a_refusal(offset: float) -> None:
    clock = Clock()
    host = ClockedHost(clock, offset)
    p = make_provider(host, clock)
    start = clock.now

    async def go() -> int:
        polls = 0
        try:
            handle = await p.submit(REQ)
            while clock.now - start < 3 * jwt.TIMES.ttl:  # 90 minutes: three token lifetimes
                status = await p.status(handle)
                assert isinstance(status, Running)
                polls += 1
                await p.ctx.sleep(30.0)  # Kling's longest poll interval
        finally:
            await p.aclose()
        return polls

    polls = run(go())
    assert polls > 150
    assert host.refusals() == [], "no token the host sees outside its window"
    assert p.auth.tokens.minted >= 3, "tokens were renewed along the way"  # type: ignore[attr-defined]


@pytest.mark.parametrize("offset", [20 * MIN, 28 * MIN], ids=lambda o: f"host{o:+.0f}s")
def test_further_ahead_a_long_wait_recovers_each_refusal_with_one_fresh_token(offset: float) -> None:
    """Beyond the refresh margin a cached token may be refused as expired; the GET is signed
    once more with a fresh token (valid for the host), so the wait goes on."""
    clock = Clock()
    host = ClockedHost(clock, offset)
    p = make_provider(host, clock)
    start = clock.now

    async def go() -> None:
        try:
            handle = await p.submit(REQ)
            while clock.now - start < 3 * HOUR:
                assert isinstance(await p.status(handle), Running)
                await p.ctx.sleep(30.0)
        finally:
            await p.aclose()

    run(go())
    assert host.requests[0] == ("POST", "ok"), "the submit went out with a fresh token"
    refused = [i for i, (_, outcome) in enumerate(host.requests) if outcome != "ok"]
    assert refused, "the cached tokens did reach the host's expiry"
    for i in refused:
        assert host.requests[i] == ("GET", "1004") and host.requests[i + 1] == ("GET", "ok"), i
    # At most one refusal per token, each costing one extra GET.
    assert len(refused) < p.auth.tokens.minted  # type: ignore[attr-defined]


# --- a persisting offset is named ------------------------------------------------------


def _status_error(host: ClockedHost, clock: Clock) -> AuthenticationError:
    p = make_provider(host, clock)

    async def go() -> None:
        try:
            await p.status(p.resume("867"))
        finally:
            await p.aclose()

    with pytest.raises(AuthenticationError) as exc:
        run(go())
    return exc.value


def _submit_error(host: ClockedHost, clock: Clock) -> AuthenticationError:
    p = make_provider(host, clock)

    async def go() -> None:
        try:
            await p.submit(REQ)
        finally:
            await p.aclose()

    with pytest.raises(AuthenticationError) as exc:
        run(go())
    return exc.value


@pytest.mark.parametrize(("offset", "code", "said"), [(2 * HOUR, "1004", "about 2 h ahead"),
                                                      (-2 * HOUR, "1003", "about 2 h behind"),
                                                      (-40 * MIN, "1003", "about 40 min behind")])
def test_a_persisting_offset_is_named_after_exactly_one_retry(offset: float, code: str, said: str) -> None:
    clock = Clock()
    host = ClockedHost(clock, offset)
    error = _status_error(host, clock)
    assert host.requests == [("GET", code), ("GET", code)], "one retry with a fresh token, not a loop"
    text = str(error)
    assert error.code == code and error.status_code == 401 and not error.retryable and error.job_id == "867"
    assert "the host's clock and this machine's seem to differ" in text
    assert said in text and "Date header" in text
    assert "NTP" in text
    assert "a freshly signed token was refused as well" in text


@pytest.mark.parametrize(("offset", "code", "said"), [(2 * HOUR, "1004", "about 2 h ahead"),
                                                      (-3 * HOUR, "1003", "about 3 h behind")])
def test_a_submit_refused_for_its_fresh_token_names_the_offset_and_is_not_repeated(
    offset: float, code: str, said: str
) -> None:
    clock = Clock()
    host = ClockedHost(clock, offset)
    error = _submit_error(host, clock)
    assert host.requests == [("POST", code)], "a submit is never sent twice"
    text = str(error)
    assert error.code == code and not error.retryable
    assert "seem to differ" in text and said in text and "NTP" in text


@pytest.mark.parametrize(("offset", "said"), [(2 * HOUR, "more than 30 min ahead"),
                                              (-2 * HOUR, "more than 15 min behind")])
def test_without_a_date_header_the_error_gives_the_bound_the_refusal_proves(offset: float, said: str) -> None:
    clock = Clock()
    host = ClockedHost(clock, offset, send_date=False)
    text = str(_status_error(host, clock))
    assert len(host.requests) == 2
    assert said in text and "validity window" in text and "Date header" not in text and "NTP" in text


def test_a_date_header_that_contradicts_the_refusal_is_not_believed() -> None:
    """The host says 1004 but its Date header agrees with ours: no made-up estimate."""
    clock = Clock()

    def host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"date": email.utils.formatdate(clock.now, usegmt=True)},
                              json={"code": 1004, "message": "Authorization has expired", "request_id": "r"})

    ctx = ProviderContext(name="kling", settings=ProviderSettings(),
                          environ={"KLING_ACCESS_KEY": AK, "KLING_SECRET_KEY": SK},
                          transport=httpx.MockTransport(host), clock=clock)
    p = KlingProvider(ctx)

    async def go() -> None:
        try:
            await p.status(p.resume("867"))
        finally:
            await p.aclose()

    with pytest.raises(AuthenticationError) as exc:
        run(go())
    text = str(exc.value)
    assert "more than 30 min ahead" in text and "about" not in text


def test_the_error_never_shows_a_token_or_a_key() -> None:
    clock = Clock()
    host = ClockedHost(clock, 2 * HOUR)
    text = str(_status_error(host, clock))
    assert AK not in text and SK not in text
    assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}", text)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(6, "6 s"), (99, "99 s"), (100, "2 min"), (7199.6, "2 h"), (600, "10 min"), (7200, "2 h"), (9000, "2.5 h"),
     (-7200, "2 h"), (3 * 86_400, "3 days")],
)
def test_span(seconds: float, shown: str) -> None:
    assert span(seconds) == shown


@pytest.mark.parametrize(
    ("date", "received", "offset"),
    [
        ("Thu, 20 Nov 2025 06:40:00 GMT", 1_763_620_800.0, 0.0),
        ("Thu, 20 Nov 2025 08:40:00 GMT", 1_763_620_800.0, 7200.0),
        ("Thu, 20 Nov 2025 06:40:00 -0000", 1_763_620_830.0, -30.0),
        ("Thu, 20 Nov 2025 07:40:00 +0100", 1_763_620_800.0, 0.0),
        ("not a date", 1.0, None),
        ("", 1.0, None),
        (None, 1.0, None),
    ],
)
def test_host_offset_from_the_date_header(date: str | None, received: float, offset: float | None) -> None:
    assert host_offset(date, received) == offset
