"""Jobs in flight: the per-provider bound on jobs (``max_in_flight``) and on HTTP requests.

No timing: each test counts what is in flight while the host (a fake provider, or a transport
that holds every request) keeps everything waiting, then lets it go.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from kling_core import hookimpl
from kling_core.client import AsyncEditClient, EditClient
from kling_core.config import config_from_document
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest, EditResult, OutputVideo
from kling_core.contract.status import JobStatus, Succeeded
from kling_core.errors import KlingError, ProviderError, ValidationError
from kling_core.inflight import (
    DEFAULT_MAX_IN_FLIGHT,
    MAX_REQUESTS,
    MIN_REQUESTS,
    STATUS_STREAMS,
    LoopBound,
    http_concurrency,
)
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle, Provider, ProviderContext
from kling_core.settings import PollSettings, ProviderSettings
from tests.test_http_provider import KEY, STATUS, Demo


class Held(Provider):
    """Every job stays running until the test sets its event; counts jobs in flight on the host."""

    name = "held"
    title = "jobs held until released"
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),), max_in_flight=2)
    default_poll = PollSettings(initial=0.0, factor=1.0, max=0.0, jitter=0.0, deadline=60.0)
    release: ClassVar[dict[str, asyncio.Event]] = {}
    running: ClassVar[set[str]] = set()
    most: ClassVar[int] = 0
    submitted: ClassVar[list[str]] = []

    async def submit(self, request: EditRequest) -> JobHandle:
        job_id = f"job-{request.prompt}"
        cls = type(self)
        cls.submitted.append(job_id)
        cls.running.add(job_id)
        cls.most = max(cls.most, len(cls.running))
        cls.release.setdefault(job_id, asyncio.Event())
        return JobHandle(provider=self.name, job_id=job_id, model=request.model)

    async def status(self, handle: JobHandle) -> JobStatus:
        await type(self).release[handle.job_id].wait()
        type(self).running.discard(handle.job_id)
        result = EditResult(video=OutputVideo(url="https://cdn.example/out.mp4"), job_id=handle.job_id,
                            provider=self.name, model="kling-o1")
        return Succeeded(handle.job_id, self.name, result)


class Undocumented(Held):
    name = "undocumented"
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),))


class SlowSubmit(Held):
    """Every submit waits for the test: counts submits in progress at once."""

    name = "slowsubmit"
    go: ClassVar[asyncio.Event | None] = None
    sending: ClassVar[int] = 0
    most_sending: ClassVar[int] = 0

    async def submit(self, request: EditRequest) -> JobHandle:
        cls = type(self)
        cls.sending += 1
        cls.most_sending = max(cls.most_sending, cls.sending)
        assert cls.go is not None
        try:
            await cls.go.wait()
        finally:
            cls.sending -= 1
        return await super().submit(request)


class _Plugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(Held)
        register(Undocumented)
        register(SlowSubmit)


@pytest.fixture(autouse=True)
def _reset() -> None:
    Held.release, Held.running, Held.most, Held.submitted = {}, set(), 0, []


def client(tmp_path: Path, **config: Any) -> AsyncEditClient:
    host = PluginHost(entrypoints=False, plugins=[("held", _Plugin())])
    return AsyncEditClient(provider="held", config=config_from_document(config), host=host,
                           journal=JobLog(tmp_path), rng=random.Random(1))


async def turns(n: int = 50) -> None:
    """Let every ready task run as far as it can (no clock involved)."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- the job bound ------------------------------------------------------------------------


def test_the_limit_is_the_setting_else_the_documented_one_else_the_default(tmp_path: Path) -> None:
    c = client(tmp_path)
    assert c.in_flight_limit() == 2  # Held documents 2
    assert c.in_flight_limit("undocumented") == DEFAULT_MAX_IN_FLIGHT
    c = client(tmp_path, providers={"held": {"max_in_flight": 5}, "undocumented": {"max_in_flight": 1}})
    assert c.in_flight_limit("held") == 5
    assert c.in_flight_limit("undocumented") == 1


def test_the_blocking_client_answers_without_a_loop_or_a_key(tmp_path: Path) -> None:
    host = PluginHost(entrypoints=False, plugins=[("held", _Plugin())])
    with EditClient(provider="held", config=config_from_document({"providers": {"held": {"max_in_flight": 7}}}),
                    host=host, journal=JobLog(tmp_path)) as c:
        assert c.in_flight_limit() == 7
        assert c.in_flight_limit("undocumented") == DEFAULT_MAX_IN_FLIGHT


@pytest.mark.parametrize("value", [0, -3, 100_001, "many", 2.5])
def test_a_bad_max_in_flight_names_the_field(value: Any) -> None:
    with pytest.raises(KlingError, match=r"providers\.held\.max_in_flight"):
        config_from_document({"providers": {"held": {"max_in_flight": value}}})


def test_the_config_schema_knows_max_in_flight() -> None:
    from kling_core.schema_store import validator

    assert not list(validator("config").iter_errors({"providers": {"fal": {"max_in_flight": 40}}}))
    assert list(validator("config").iter_errors({"providers": {"fal": {"max_in_flight": 0}}}))


def test_edit_runs_at_most_the_bound_and_the_next_job_submits_when_one_ends(tmp_path: Path) -> None:
    async def main() -> None:
        c = client(tmp_path)
        jobs = [asyncio.create_task(c.edit(c.request(f"https://media.example/{i}.mp4", str(i)))) for i in range(5)]
        await turns()
        assert Held.submitted == ["job-0", "job-1"]  # the other three wait before their submit
        Held.release["job-1"].set()
        await turns()
        assert len(Held.submitted) == 3 and len(Held.running) == 2
        for i in range(5):
            Held.release.setdefault(f"job-{i}", asyncio.Event()).set()
            await turns()
        results = await asyncio.gather(*jobs)
        assert sorted(r.job_id for r in results) == [f"job-{i}" for i in range(5)]
        assert Held.most == 2
        assert c._slots().held == 0 and c._slots().most == 2
        await c.aclose()

    asyncio.run(main())


def test_a_bad_request_is_refused_at_once_even_when_the_bound_is_full(tmp_path: Path) -> None:
    async def main() -> None:
        c = client(tmp_path)
        jobs = [asyncio.create_task(c.edit(c.request(f"https://media.example/{i}.mp4", str(i)))) for i in range(2)]
        await turns()
        bad = c.request("https://media.example/x.mp4", "x @Image3")  # names an image it lacks
        with pytest.raises(ValidationError):
            await c.edit(bad)
        for job in ("job-0", "job-1"):
            Held.release[job].set()
        await asyncio.gather(*jobs)
        await c.aclose()

    asyncio.run(main())


def test_bare_submit_takes_no_job_slot(tmp_path: Path) -> None:
    async def main() -> None:
        c = client(tmp_path)
        handles = [await c.submit(c.request(f"https://media.example/{i}.mp4", str(i))) for i in range(4)]
        assert len(handles) == 4 and len(Held.running) == 4  # past the bound: submit alone never waits
        await c.aclose()

    asyncio.run(main())


def test_submits_take_turns_before_their_look_up_and_claim(tmp_path: Path) -> None:
    async def main() -> None:
        SlowSubmit.go, SlowSubmit.sending, SlowSubmit.most_sending = asyncio.Event(), 0, 0
        c = client(tmp_path)
        turn = http_concurrency(c.in_flight_limit("slowsubmit"))
        jobs = [asyncio.create_task(c.submit(c.request(f"https://media.example/{i}.mp4", str(i)),
                                             provider="slowsubmit")) for i in range(3 * turn)]
        await turns()
        assert SlowSubmit.sending == turn  # the others wait for a turn, before any job-log work
        assert c.journal is not None and len(c.journal.list(limit=0)) == turn  # claims: only theirs
        SlowSubmit.go.set()
        handles = await asyncio.gather(*jobs)
        assert len({h.job_id for h in handles}) == 3 * turn and SlowSubmit.most_sending == turn
        await c.aclose()

    asyncio.run(main())


# -- the request bound --------------------------------------------------------------------


def test_request_concurrency_follows_the_job_bound_within_limits() -> None:
    assert http_concurrency(1) == MIN_REQUESTS
    assert http_concurrency(20) == 20
    assert http_concurrency(10_000) == MAX_REQUESTS


class Holding:
    """A transport that keeps every request until released, counting how many it holds."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self.seen = 0
        self.go = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await self.go.wait()
        finally:
            self.active -= 1
        return httpx.Response(200, json={"ok": True}, stream=httpx.ByteStream(b'{"ok": true}'))


def demo(settings: ProviderSettings, transport: httpx.AsyncBaseTransport | None) -> Demo:
    async def no_sleep(seconds: float) -> None:
        return None

    return Demo(ProviderContext(name="demo", settings=settings, environ={"DEMO_KEY": KEY}, transport=transport,
                                sleep=no_sleep))


def test_requests_past_the_bound_wait_before_the_pool() -> None:
    async def main() -> None:
        host = Holding()
        prov = demo(ProviderSettings(max_in_flight=12), httpx.MockTransport(host))
        calls = [asyncio.create_task(prov.send_get(prov.make_request("GET", STATUS))) for _ in range(40)]
        await turns()
        assert host.seen == 12 and host.active == 12  # 28 wait in the client, none in the pool
        assert prov.requests.held == 12
        host.go.set()
        responses = await asyncio.gather(*calls)
        assert all(r.status_code == 200 for r in responses)
        assert host.most == 12 and prov.requests.held == 0
        await prov.aclose()

    asyncio.run(main())


def test_a_streamed_submit_keeps_its_slot_until_closed() -> None:
    async def main() -> None:
        host = Holding()
        host.go.set()
        prov = demo(ProviderSettings(), httpx.MockTransport(host))
        response = await prov._send(prov.make_request("POST", STATUS, json_body={}), stream=True)
        assert prov.requests.held == 1
        await response.aread()
        await response.aclose()
        assert prov.requests.held == 0
        await prov.aclose()

    asyncio.run(main())


def test_status_streams_take_no_request_slot_and_are_bounded() -> None:
    async def main() -> None:
        host = Holding()
        host.go.set()
        prov = demo(ProviderSettings(), httpx.MockTransport(host))
        streams = [await prov.open_stream(prov.make_request("GET", STATUS)) for _ in range(STATUS_STREAMS)]
        assert prov.requests.held == 0  # polls still have every request slot
        with pytest.raises(ProviderError) as info:
            await prov.open_stream(prov.make_request("GET", STATUS))
        assert info.value.code == "streams_busy" and host.seen == STATUS_STREAMS  # refused before sending
        await streams[0].aclose()
        again = await prov.open_stream(prov.make_request("GET", STATUS))  # a closed one frees its place
        for response in (*streams[1:], again):
            await response.aclose()
        await prov.aclose()

    asyncio.run(main())


def test_the_connection_pool_is_sized_to_the_request_bound() -> None:
    async def main() -> None:
        prov = demo(ProviderSettings(max_in_flight=30), None)
        pool = prov.client._transport._pool  # type: ignore[attr-defined]  # httpx internals: no public reading
        assert prov.requests.size == 30
        assert pool._max_connections == pool._max_keepalive_connections == 30 + STATUS_STREAMS
        await prov.aclose()

    asyncio.run(main())


# -- the bound itself ---------------------------------------------------------------------


def test_urgent_waiters_go_first_then_the_others_in_order() -> None:
    async def main() -> None:
        bound = LoopBound(1)
        order: list[str] = []

        async def take(name: str, urgent: bool) -> None:
            async with bound.slot(urgent=urgent):
                order.append(name)

        await bound.acquire()
        tasks = [asyncio.create_task(take(n, u)) for n, u in (("poll-1", False), ("poll-2", False), ("submit", True))]
        await turns()
        assert order == [] and bound.held == 1
        bound.release()
        await asyncio.gather(*tasks)
        assert order == ["submit", "poll-1", "poll-2"] and bound.held == 0 and bound.most == 1

    asyncio.run(main())


def test_a_cancelled_waiter_neither_keeps_nor_loses_a_slot() -> None:
    async def main() -> None:
        bound = LoopBound(1)
        await bound.acquire()
        waiting = asyncio.create_task(bound.acquire())
        handed = asyncio.create_task(bound.acquire())
        later = asyncio.create_task(bound.acquire())
        await turns()
        waiting.cancel()  # cancelled while queued: it leaves the queue
        await turns()
        bound.release()  # hands the slot to `handed` ...
        handed.cancel()  # ... which is cancelled before it runs: the slot passes on to `later`
        await turns()
        assert waiting.cancelled() and handed.cancelled() and later.done()
        assert bound.held == 1
        bound.release()
        assert bound.held == 0

    asyncio.run(main())


def test_a_waiter_cancelled_just_before_a_release_stays_cancelled() -> None:
    async def main() -> None:
        bound = LoopBound(1)
        await bound.acquire()
        cancelled = asyncio.create_task(bound.acquire())
        served = asyncio.create_task(bound.acquire())
        await turns()
        cancelled.cancel()  # its waiter is cancelled now; the task runs its cleanup later
        bound.release()  # drops the cancelled waiter and serves the next one
        await turns()
        assert cancelled.cancelled() and served.done() and served.exception() is None
        assert bound.held == 1

    asyncio.run(main())
