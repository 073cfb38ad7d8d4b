"""A host's refusal at the account's limit on jobs in flight (Kling's 1303) lowers the client's
bound and the refused job is resubmitted once one of this client's jobs ends, never lost.

The host here is Kling's omni-video API over a mock transport with a resource pack of
``limit`` parallel tasks: a task holds a slot from its submit until it finishes (after
``polls`` status answers), and a submit past the limit is answered HTTP 429, code 1303.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from kling_core_plugins.kling.wire import ERRORS as KLING_ERRORS

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.errors import ProviderError, RateLimitedError
from kling_core.http.errormap import ErrorInfo, ErrorTable
from kling_core.inflight import HostLimit
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost

BASE = "https://api-singapore.klingai.com/v1/videos/omni-video"
ENV = {"KLING_ACCESS_KEY": "ak-test-1", "KLING_SECRET_KEY": "sk-test-1"}
VIDEO = "https://media.example.com/v.mp4"


def _answer(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})


class PackHost:
    """Kling with a resource pack of ``limit`` parallel tasks; ``busy_elsewhere`` submits are
    refused first as if another machine held every slot."""

    def __init__(self, limit: int, *, polls: int = 2, busy_elsewhere: int = 0) -> None:
        self.limit, self.polls, self.busy_elsewhere = limit, polls, busy_elsewhere
        self.running: dict[str, int] = {}  # task id -> status answers left before it finishes
        self.accepted: list[str] = []  # external_task_id of each task made
        self.refused: collections.Counter[str] = collections.Counter()
        self.most = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if request.method == "POST":
            key = json.loads(request.content)["external_task_id"]
            if self.busy_elsewhere or len(self.running) >= self.limit:
                self.busy_elsewhere = max(0, self.busy_elsewhere - 1)
                self.refused[key] += 1
                return httpx.Response(429, json={"code": 1303, "message": "parallel task over resource pack limit",
                                                 "request_id": "r"})
            task_id = str(1000 + len(self.accepted))
            self.accepted.append(key)
            self.running[task_id] = self.polls
            self.most = max(self.most, len(self.running))
            return _answer({"task_id": task_id, "task_status": "submitted", "task_info": {"external_task_id": key}})
        task_id = request.url.path.rsplit("/", 1)[1]
        left = self.running[task_id] - 1
        if left > 0:
            self.running[task_id] = left
            return _answer({"task_id": task_id, "task_status": "processing"})
        del self.running[task_id]  # finished: its slot is free
        return _answer({"task_id": task_id, "task_status": "succeed", "final_unit_deduction": "4",
                        "created_at": 1763700000000, "updated_at": 1763700095000,
                        "task_result": {"videos": [{"id": "v", "url": f"https://cdn.example.com/{task_id}.mp4",
                                                    "duration": "5.0"}]}})


class Pauses:
    """The client's sleep: records each pause and yields to the other jobs, never waits."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        await asyncio.sleep(0)


def client_for(host: PackHost, tmp_path: Path, pauses: Pauses, **poll: Any) -> AsyncEditClient:
    config = config_from_document({"providers": {"kling": {
        "poll": {"initial": 0.0, "max": 0.0, "jitter": 0.0, "stream": False, **poll}}}})
    return AsyncEditClient(provider="kling", config=config, environ=ENV, transport=httpx.MockTransport(host),
                           journal=JobLog(tmp_path / "state"), sleep=pauses, host=PluginHost())


def test_edits_past_the_pack_limit_wait_for_a_slot_and_each_job_is_made_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host, pauses = PackHost(limit=3), Pauses()

    async def go() -> list[Any]:
        async with client_for(host, tmp_path, pauses) as client:
            assert client.in_flight_limit("kling") == 100  # no documented limit: nothing learned yet
            results = await asyncio.gather(*(client.edit(client.request(VIDEO, f"make it blue {i}"))
                                             for i in range(12)))
            assert client.in_flight_limit("kling") == 3, "the limit the host proved stays for the client"
            return results

    with caplog.at_level(logging.INFO, logger="kling_core"):
        results = asyncio.run(go())
    assert len(results) == 12 and len({r.job_id for r in results}) == 12
    assert len(host.accepted) == len(set(host.accepted)) == 12, "every job made exactly once"
    assert host.most <= 3
    assert sum(host.refused.values()) >= 1
    # Only submits sent before the first refusal came back can be refused: never one twice.
    assert max(host.refused.values()) == 1
    said = [r for r in caplog.records if "limit on jobs in flight" in r.getMessage()]
    assert len(said) == 1 and "at most 3 at once" in said[0].getMessage() and said[0].levelno == logging.INFO
    log = JobLog(tmp_path / "state")
    refused_key = next(iter(host.refused))
    record = log.get(refused_key)
    assert record is not None and record.state == "succeeded" and record.take == 1
    assert [e.state for e in record.events][:3] == ["submitting", "failed", "submitting"]
    log.close()


def test_start_and_wait_as_a_batch_runs_them_are_held_to_the_proved_limit(tmp_path: Path) -> None:
    host, pauses = PackHost(limit=2), Pauses()

    async def one(client: AsyncEditClient, i: int) -> Any:
        started = await client.start(client.request(VIDEO, f"line {i}"))
        return await client.wait(started.handle)

    async def go() -> None:
        async with client_for(host, tmp_path, pauses) as client:
            await asyncio.gather(*(one(client, i) for i in range(8)))
            assert client._host_limits["kling"].jobs == set(), "every wait ended: no job counted in flight"

    asyncio.run(go())
    assert len(host.accepted) == len(set(host.accepted)) == 8
    assert host.most <= 2 and max(host.refused.values()) == 1


def test_slots_held_elsewhere_are_asked_again_after_a_pause(tmp_path: Path) -> None:
    host, pauses = PackHost(limit=5, busy_elsewhere=2), Pauses()

    async def go() -> Any:
        async with client_for(host, tmp_path, pauses, initial=2.0, max=8.0, factor=2.0) as client:
            result = await client.edit(client.request(VIDEO, "alone"))
            assert client.in_flight_limit("kling") == 1
            return result

    result = asyncio.run(go())
    assert result.job_id == "1000" and host.refused[host.accepted[0]] == 2
    assert pauses.seen[:2] == [2.0, 4.0], "the poll backoff between asks, not a hot loop"


def test_a_limit_that_stays_reached_ends_at_the_poll_deadline(tmp_path: Path) -> None:
    host, pauses = PackHost(limit=5, busy_elsewhere=10**6), Pauses()

    async def go() -> None:
        async with client_for(host, tmp_path, pauses, initial=10.0, max=10.0, deadline=60.0) as client:
            await client.edit(client.request(VIDEO, "never"))

    with pytest.raises(RateLimitedError, match="limit stayed reached for 60s") as caught:
        asyncio.run(go())
    assert caught.value.code == "1303" and sum(pauses.seen) == 60.0
    assert sum(host.refused.values()) == 7 and not host.accepted


def test_only_kling_1303_is_an_in_flight_limit_refusal() -> None:
    assert KLING_ERRORS.lookup(429, "1303").in_flight_limit
    flagged = [code for code, rule in KLING_ERRORS.by_code.items() if rule.in_flight_limit]
    assert flagged == ["1303"]  # 1302 (rate) and 1102 (credit) are other 429s
    error = KLING_ERRORS.build("kling", 429, ErrorInfo("parallel task over resource pack limit", code="1303"))
    assert isinstance(error, RateLimitedError) and error.in_flight_limit
    assert not KLING_ERRORS.build("kling", 429, ErrorInfo("Rate limit exceeded", code="1302")).in_flight_limit
    assert not ErrorTable().build("fal", 429, ErrorInfo("busy")).in_flight_limit
    for name in ("fal", "segmind", "unifically", "wavespeed", "replicate"):
        table: ErrorTable = PluginHost().provider_class(name).error_table  # type: ignore[attr-defined]
        rules = [*table.by_code.values(), *table.by_status.values(), *table.by_status_code.values()]
        assert not any(rule.in_flight_limit for rule in rules), name


def test_host_limit_lets_submits_through_in_order_under_the_bound() -> None:
    async def go() -> list[str]:
        limit, order = HostLimit(), []
        limit.add(("kling", "a"))
        limit.add(("kling", "b"))
        assert limit.lower() == 2

        async def submit(name: str) -> None:
            await limit.turn()
            order.append(name)
            limit.add(("kling", name))  # its job counts before its turn ends
            limit.settle()

        waiting = [asyncio.ensure_future(submit(n)) for n in ("c", "d")]
        await asyncio.sleep(0)
        assert order == [], "both wait: two jobs in flight, bound two"
        limit.ended(("kling", "a"))
        await asyncio.sleep(0)
        assert order == ["c"]
        limit.ended(("kling", "zzz"))  # not ours: frees nothing
        await asyncio.sleep(0)
        assert order == ["c"]
        limit.ended(("kling", "b"))
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(go()) == ["c", "d"]


def test_a_refusal_that_may_have_made_a_job_is_never_resubmitted() -> None:
    from kling_core.client.submit import over_concurrency

    error = KLING_ERRORS.build("kling", 429, ErrorInfo("parallel task over resource pack limit", code="1303"))
    assert over_concurrency(error)
    error.client_key = "k-1"  # the submit reached the host and its outcome is not certain
    assert not over_concurrency(error)
    assert not over_concurrency(ProviderError("busy", provider="kling", status_code=429))


def test_ffmpeg_is_found_once_per_client_and_a_vanished_binary_still_stops_the_next_submit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before each submit the client proves ffmpeg is there (results are verified with it);
    after the first proof a ``stat`` of the same file is enough, and a binary gone since is a
    ConfigError before anything is paid for."""
    import stat

    from kling_core.errors import ConfigError
    from kling_core.media import locate

    fake = tmp_path / "ff"
    fake.write_text("#!/bin/sh\necho 'ffmpeg version 9.9 fake'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    host, pauses = PackHost(limit=5), Pauses()
    calls: list[str] = []
    real = locate.require_ffmpeg

    def counted(*args: Any, **kwargs: Any) -> str:
        calls.append("find")
        return real(*args, **kwargs)

    monkeypatch.setattr("kling_core.client.submit.require_ffmpeg", counted)
    config = config_from_document({"media": {"ffmpeg": str(fake)}, "providers": {"kling": {
        "poll": {"initial": 0.0, "max": 0.0, "jitter": 0.0, "stream": False}}}})

    async def go() -> None:
        async with AsyncEditClient(provider="kling", config=config, environ=ENV, transport=httpx.MockTransport(host),
                                   journal=JobLog(tmp_path / "state"), sleep=pauses, host=PluginHost()) as client:
            for i in range(3):
                await client.edit(client.request(VIDEO, f"job {i}"))
            assert calls == ["find"]
            fake.unlink()
            with pytest.raises(ConfigError, match="ffmpeg"):
                await client.edit(client.request(VIDEO, "job 3"))

    asyncio.run(go())
    assert len(host.accepted) == 3, "the fourth job was never sent"
