"""The job log's cheaper paths say the same as the long ones: a claim's record is what a read
returns, a state change writes an event only when the state changes, and a submit hashes and
looks its request up once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost

REQUEST = {"request": {"video": "https://media.example.com/v.mp4", "prompt": "p"}, "media_sha256": {}}


@pytest.mark.parametrize("keyed", [False, True])
def test_a_claim_returns_the_record_a_read_gives(tmp_path: Path, keyed: bool) -> None:
    log = JobLog(tmp_path)
    keys: dict[str, Any] = {"client_key": "mine-1"} if keyed else {"base_key": "b" * 20}
    first, created = log.claim(provider="fal", model="kling-o1", request=REQUEST, request_sha256="a" * 64,
                               output="/out/a.mp4", **keys)
    assert created and first == log.get(first.client_key)
    if not keyed:  # a failed take without a job id is claimed again; a finished one makes the next take
        log.transition(first.client_key, "saved")
        second, created = log.claim(provider="fal", model="kling-o1", request=REQUEST, request_sha256="a" * 64,
                                    base_key="b" * 20)
        assert created and second.take == 2 and second == log.get(second.client_key)
    log.close()


def test_a_state_change_writes_an_event_only_when_the_state_changes(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    log.claim(provider="fal", model=None, request=REQUEST, request_sha256="a" * 64, client_key="k-1")
    assert log.transition("k-1", "submitted", detail="sent", durable=True, job_id="j-1")
    assert log.transition("k-1", "submitted", error="again")  # same state: fields only
    assert log.transition("k-1", error=None)
    assert log.transition("k-1", "running")
    assert not log.transition("nope", "running")  # no such key: nothing written
    got = log.get("k-1")
    assert got is not None and got.state == "running" and got.job_id == "j-1" and got.error is None
    assert [(e.state, e.detail) for e in got.events] == [("submitting", None), ("submitted", "sent"), ("running", None)]
    assert log.get("nope") is None
    log.close()


def test_a_submit_hashes_and_looks_up_its_request_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kling_core.client.pickup as pickup

    hashed: list[str] = []
    looked: list[str] = []
    real_canonical, real_latest = pickup.canonical, JobLog.latest

    def canonical(request: Any, provider: str) -> Any:
        hashed.append(provider)
        return real_canonical(request, provider)

    def latest(self: JobLog, base: str) -> Any:
        looked.append(base)
        return real_latest(self, base)

    monkeypatch.setattr(pickup, "canonical", canonical)
    monkeypatch.setattr(JobLog, "latest", latest)

    def host(request: httpx.Request) -> httpx.Response:
        key = json.loads(request.read())["external_task_id"]
        return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": {
            "task_id": "t-1", "task_status": "submitted", "task_info": {"external_task_id": key}}})

    async def go() -> Any:
        async with AsyncEditClient(provider="kling", config=config_from_document({}), host=PluginHost(),
                                   environ={"KLING_ACCESS_KEY": "ak", "KLING_SECRET_KEY": "sk"},
                                   transport=httpx.MockTransport(host), journal=JobLog(tmp_path)) as client:
            started = await client.start(client.request("https://media.example.com/v.mp4", "once"))
            record = client.journal.get(started.client_key) if client.journal is not None else None
            return started, record

    started, record = asyncio.run(go())
    assert hashed == ["kling"] and len(looked) == 1
    assert record is not None and record.state == "submitted" and record.job_id == "t-1"
    assert [(a["provider"], a["outcome"]) for a in record.attempts] == [("kling", "served")]
    assert [e.state for e in record.events] == ["submitting", "submitted"]
    assert started.handle.job_id == "t-1"
