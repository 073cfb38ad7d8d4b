"""The host's status stream as a push channel (kling_core.http.stream) and waking a wait.

Over mock transports: the event parser, a stream that ends the job, every way a stream fails
(each only means polling), the wait loop woken by the stream and by ``wake`` (its sleep never
returns on its own, so only a push can end those waits). Against the emulator's fal host on
loopback: the real stream from submit to COMPLETED. No timed assertions.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kling_core_plugins.fal import FalProvider

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.contract.status import JobStatus, Queued, Running
from kling_core.http.stream import SseEvent, StreamLost, sse_events, watch
from kling_core.provider import JobHandle
from kling_core.testing.doubles import build_provider

KEY = f"fake-fal-key-{uuid.uuid4()}"
ROOT = "https://queue.fal.run/fal-ai/kling-video/requests/req-1"
STATUS, STREAM, RESULT = f"{ROOT}/status", f"{ROOT}/status/stream", ROOT
VIDEO = {"video": {"url": "https://v3b.fal.media/files/out.mp4", "content_type": "video/mp4", "file_size": 10}}


def doc(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "request_id": "req-1", "status_url": STATUS, "response_url": RESULT, **extra}


def sse(*events: dict[str, Any] | str) -> bytes:
    """An event-stream body: dicts as data events, strings as raw lines (comments)."""
    out = []
    for e in events:
        out.append(e if isinstance(e, str) else f"data: {json.dumps(e)}\n\n")
    return "".join(out).encode()


def handle() -> JobHandle:
    return JobHandle(provider="fal", job_id="req-1", model="kling-o1",
                     urls={"status": STATUS, "response": RESULT, "cancel": f"{ROOT}/cancel"})


class Host:
    """fal's queue by URL: the status GETs answer from a script, the stream from ``stream``."""

    def __init__(self, statuses: list[dict[str, Any]], stream: Callable[[], httpx.Response]) -> None:
        self.statuses = statuses
        self.stream = stream
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?", 1)[0]
        self.seen.append(url)
        if url == STREAM:
            return self.stream()
        if url == STATUS:
            answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(200 if answer["status"] == "COMPLETED" else 202, json=answer)
        if url == RESULT:
            return httpx.Response(200, json=VIDEO)
        return httpx.Response(418)

    def count(self, url: str) -> int:
        return self.seen.count(url)


def event_stream(body: bytes, status: int = 200, ctype: str = "text/event-stream") -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(status, content=body, headers={"content-type": ctype})


async def no_sleep(seconds: float) -> None:
    return None


def provider(host: Host) -> FalProvider:
    p = build_provider(FalProvider, environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(host), sleep=no_sleep)
    assert isinstance(p, FalProvider)
    return p


# -- the event parser ---------------------------------------------------------------------------
async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def parse(*items: str) -> list[SseEvent]:
    return [e async for e in sse_events(lines(*items))]


def test_events_are_parsed_as_the_standard_says() -> None:
    got = asyncio.run(parse(": keep-alive", "", "data: {\"a\":", "data:1}", "", "event: update", "id: 7",
                            "data:  two spaces", "retry: 10", "", "event: empty", "", "data: last"))
    # comments and data-less events dispatch nothing; an unfinished event at the end is dropped
    assert got == [SseEvent('{"a":\n1}'), SseEvent(" two spaces", event="update", id="7")]


def test_an_endless_event_is_refused() -> None:
    with pytest.raises(StreamLost, match="longer than"):
        asyncio.run(parse(*["data: " + "x" * 100_000] * 11))


# -- watch: one job's stream --------------------------------------------------------------------
def test_a_stream_to_completed_reports_each_status_with_its_logs_gathered() -> None:
    body = sse(doc("IN_QUEUE", queue_position=2), ": keep-alive\n\n",
               doc("IN_PROGRESS", logs=[{"message": "started"}]), doc("IN_PROGRESS", logs=[{"message": "50%"}]),
               doc("COMPLETED", logs=[], error=None, error_type=None))
    host = Host([doc("IN_PROGRESS")], event_stream(body))
    seen: list[JobStatus] = []
    why = asyncio.run(watch(provider(host), handle(), on_status=seen.append, sleep=no_sleep))
    assert why is None
    assert seen[0] == Queued("req-1", "fal", position=2)
    assert [s.logs for s in seen[1:] if isinstance(s, Running)] == [("started",), ("started", "50%")]
    assert host.count(STREAM) == 1 and host.count(STATUS) == 0  # the stream alone: no GET


@pytest.mark.parametrize(("name", "answer", "opens"), [
    ("not served (404)", event_stream(b'{"detail": "Not Found"}', 404, "application/json"), 1),
    ("not an event stream", event_stream(b"{}", 200, "application/json"), 1),
    ("server error", event_stream(b"", 503, "text/plain"), 3),
    ("closed before the end", event_stream(sse(doc("IN_PROGRESS"))), 3),
    ("not JSON", event_stream(b"data: {nope\n\n"), 3),
    ("an unknown status", event_stream(sse(doc("EXPLODED"))), 3),
    ("a broken connection", lambda: (_ for _ in ()).throw(httpx.ReadError("reset")), 3),
])
def test_a_failing_stream_is_given_up_after_its_reopens_and_never_raises(
        name: str, answer: Callable[[], httpx.Response], opens: int) -> None:
    host = Host([doc("IN_PROGRESS")], answer)
    why = asyncio.run(watch(provider(host), handle(), on_status=lambda s: None, sleep=no_sleep))
    assert why  # a reason, for the log
    assert host.count(STREAM) == opens  # refused at once, else opened again FalProvider.spec.stream.reopen times


def test_the_stream_request_asks_for_events_with_logs_on_an_api_host() -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=sse(doc("COMPLETED")), headers={"content-type": "text/event-stream"})

    p = build_provider(FalProvider, environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(answer), sleep=no_sleep)
    assert asyncio.run(watch(p, handle(), on_status=lambda s: None, sleep=no_sleep)) is None  # type: ignore[arg-type]
    (req,) = requests
    assert str(req.url) == f"{STREAM}?logs=1"
    assert req.headers["accept"] == "text/event-stream" and req.headers["authorization"] == f"Key {KEY}"
    assert req.extensions["timeout"]["read"] == FalProvider.spec.stream.idle  # type: ignore[union-attr]


# -- the wait loop ------------------------------------------------------------------------------
async def forever(seconds: float) -> None:
    """A sleep that never ends: a wait using it moves on only when woken."""
    await asyncio.Event().wait()


def client(host: Host, sleep: Callable[[float], Any] = forever, **poll: Any) -> AsyncEditClient:
    cfg = config_from_document({"providers": {"fal": {"poll": poll}}} if poll else {})
    return AsyncEditClient(provider="fal", config=cfg, environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(host),
                           sleep=sleep, use_journal=False)


def test_the_streams_end_wakes_the_wait_which_confirms_it_by_status_and_result() -> None:
    # The status GET says IN_PROGRESS, then COMPLETED; the sleep never returns, so only the
    # stream's COMPLETED event can bring the second GET.
    host = Host([doc("IN_PROGRESS"), doc("COMPLETED", error=None, error_type=None)],
                event_stream(sse(doc("IN_PROGRESS"), doc("COMPLETED"))))
    seen: list[JobStatus] = []

    async def run() -> Any:
        async with client(host) as c:
            return await asyncio.wait_for(c.wait(handle(), on_status=seen.append), timeout=60)

    result = asyncio.run(run())
    assert result.video.url == VIDEO["video"]["url"]
    assert host.count(STATUS) == 2 and host.count(RESULT) == 1 and host.count(STREAM) == 1
    assert [s.state for s in seen] == ["running", "running", "succeeded"]


def test_a_lost_stream_leaves_the_ordinary_schedule() -> None:
    host = Host([doc("IN_PROGRESS")] * 3 + [doc("COMPLETED", error=None, error_type=None)],
                event_stream(b"", 500, "text/plain"))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> Any:
        async with client(host, sleep, initial=2.0, push_every=600.0) as c:
            return await c.wait(handle())

    assert asyncio.run(run()).job_id == "req-1"
    assert host.count(STREAM) == 1 + FalProvider.spec.stream.reopen  # type: ignore[union-attr]
    assert slept and max(slept) < 600.0  # the stream never came up: never the push spacing


def test_stream_false_in_config_never_opens_it() -> None:
    host = Host([doc("IN_PROGRESS"), doc("COMPLETED", error=None, error_type=None)],
                event_stream(sse(doc("COMPLETED"))))

    async def run() -> Any:
        async with client(host, no_sleep, stream=False) as c:
            return await c.wait(handle())

    asyncio.run(run())
    assert host.count(STREAM) == 0


def test_wake_cuts_a_waits_sleep_short_from_the_loop_or_another_thread() -> None:
    host = Host([doc("IN_PROGRESS"), doc("IN_PROGRESS"), doc("COMPLETED", error=None, error_type=None)],
                event_stream(b"", 404, "text/plain"))
    found: list[bool] = []

    async def until(gets: int) -> None:
        while host.count(STATUS) < gets:
            await asyncio.sleep(0)

    async def run() -> Any:
        async with client(host, stream=False) as c:  # no stream: only wake can end these sleeps
            assert c.wake("fal", "req-1") is False  # nobody waits yet
            task = asyncio.ensure_future(c.wait(handle()))
            await until(1)
            found.append(c.wake("fal", "req-1"))  # from the loop
            await until(2)
            waker = threading.Thread(target=lambda: found.append(c.wake("fal", "req-1")))
            waker.start()
            waker.join()
            result = await asyncio.wait_for(task, timeout=60)
            found.append(c.wake("fal", "req-1"))  # the wait is over
            return result

    assert asyncio.run(run()).job_id == "req-1"
    assert found == [True, True, False]
    assert host.count(STATUS) == 3 and host.count(STREAM) == 0


# -- the emulator's fal host, on loopback --------------------------------------------------------
SUBMIT = "fal-ai/kling-video/o1/video-to-video/edit"


def test_the_emulators_stream_runs_from_submit_to_completed(tmp_path: Path) -> None:
    from kling_core.emulator.testing import start_emulator

    with start_emulator(tmp_path / "emu", render="sample", queue_seconds=0.3, run_seconds=0.3) as emu:
        base, key = emu.urls["fal"], emu.keys["fal"]
        with httpx.Client(headers={"authorization": f"Key {key}"}, timeout=20) as http:
            job = http.post(f"{base}/{SUBMIT}", json={"prompt": "dusk", "video_url": "http://127.0.0.1:9/a.mp4"}).json()
            with http.stream("GET", f"{job['status_url']}/stream", params={"logs": "1"}) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                events = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]
        assert [e["status"] for e in events][-1] == "COMPLETED"
        assert "IN_PROGRESS" in [e["status"] for e in events]
        assert events[-1]["response_url"] == job["response_url"]

        # Our client: submitted by hand, waited for with a sleep that never returns.
        job = httpx.post(f"{base}/{SUBMIT}", headers={"authorization": f"Key {key}"},
                         json={"prompt": "dusk", "video_url": "http://127.0.0.1:9/a.mp4"}).json()
        h = JobHandle(provider="fal", job_id=job["request_id"], model="kling-o1",
                      urls={"status": job["status_url"], "response": job["response_url"], "cancel": job["cancel_url"]})
        cfg = config_from_document({"providers": {"fal": {"base_url": base}}})

        async def run() -> Any:
            async with AsyncEditClient(provider="fal", config=cfg, environ={"FAL_KEY": key}, sleep=forever,
                                       use_journal=False) as c:
                return await asyncio.wait_for(c.wait(h), timeout=60)

        assert asyncio.run(run()).video.url.startswith(base)
        assert any("/status/stream" in line for line in emu.lines)


def test_an_in_process_receiver_keeps_a_webhook_jobs_polls_sparse(tmp_path: Path) -> None:
    from kling_core.joblog import JobLog

    journal = JobLog(tmp_path / "state")
    journal.claim(provider="fal", model="kling-o1", request={"request": {"webhook_url": "https://hooks.example/k"}},
                  request_sha256="0" * 64, client_key="ck-1")
    h = JobHandle(provider="fal", job_id="req-1", model="kling-o1", client_key="ck-1", urls=handle().urls)
    journal.transition("ck-1", "submitted", handle=h)

    def slept_with(receiver: bool) -> list[float]:
        host = Host([doc("IN_PROGRESS")] * 3 + [doc("COMPLETED", error=None, error_type=None)],
                    event_stream(b"", 404, "text/plain"))
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        async def run() -> None:
            cfg = config_from_document({"providers": {"fal": {"poll": {"stream": False, "push_every": 300.0}}}})
            async with AsyncEditClient(provider="fal", config=cfg, environ={"FAL_KEY": KEY}, journal=journal,
                                       transport=httpx.MockTransport(host), sleep=sleep) as c:
                if receiver:
                    c.push_receiver()
                await c.wait(h)

        asyncio.run(run())
        return slept

    assert all(225.0 <= s <= 300.0 for s in slept_with(True))  # push_every, shortened by jitter only
    assert max(slept_with(False)) < 225.0  # the ordinary schedule


def test_past_the_providers_stream_connections_a_job_polls_without_reopening() -> None:
    from kling_core.inflight import STATUS_STREAMS

    opened: list[str] = []

    async def run() -> list[str | None]:
        release = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield sse(doc("IN_PROGRESS"))
            await release.wait()
            yield sse(doc("COMPLETED"))

        async def answer(request: httpx.Request) -> httpx.Response:
            opened.append(str(request.url))
            return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

        p = build_provider(FalProvider, environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(answer),
                           sleep=no_sleep)
        assert isinstance(p, FalProvider)
        tasks = [asyncio.ensure_future(watch(p, handle(), on_status=lambda s: None, sleep=no_sleep))
                 for _ in range(STATUS_STREAMS)]
        while len(opened) < STATUS_STREAMS:
            await asyncio.sleep(0)
        one_more = await watch(p, handle(), on_status=lambda s: None, sleep=no_sleep)  # polls instead
        release.set()
        return [one_more, *await asyncio.gather(*tasks)]

    one_more, *held = asyncio.run(run())
    assert one_more is not None and "status streams are open already" in one_more
    assert held == [None] * STATUS_STREAMS and len(opened) == STATUS_STREAMS  # refused before sending, once


def test_the_blocking_client_wakes_its_wait_from_another_thread() -> None:
    from kling_core.client import EditClient

    host = Host([doc("IN_PROGRESS"), doc("COMPLETED", error=None, error_type=None)], event_stream(b"", 404, "text/plain"))
    cfg = config_from_document({"providers": {"fal": {"poll": {"stream": False}}}})
    with EditClient(provider="fal", config=cfg, environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(host),
                    sleep=forever, use_journal=False) as c:
        woken: list[bool] = []

        def waker() -> None:
            while not woken or not woken[-1]:  # until the wait is registered and woken
                woken.append(c.wake("fal", "req-1"))

        thread = threading.Thread(target=waker)
        thread.start()
        result = c.wait(handle())  # blocks this thread; only the waker can end its sleep
        thread.join()
    assert result.job_id == "req-1" and woken[-1] is True


def test_a_receiver_stopping_wakes_the_waits_it_kept_sparse() -> None:
    host = Host([doc("IN_PROGRESS"), doc("COMPLETED", error=None, error_type=None)], event_stream(b"", 404, "text/plain"))

    async def run() -> Any:
        async with client(host, stream=False) as c:  # a sleep that never ends: only a wake moves on
            c.push_receiver()
            task = asyncio.ensure_future(c.wait(handle()))
            while host.count(STATUS) < 1:
                await asyncio.sleep(0)
            c.push_receiver(False)
            return await asyncio.wait_for(task, timeout=60)

    assert asyncio.run(run()).job_id == "req-1"
    assert host.count(STATUS) == 2
