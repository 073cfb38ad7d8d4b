"""Re-running is resuming (the Python API): one submit per job, takes after a save, --new,
uncertain submits that are settled by hand, deadlines that name the command that resumes."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kling_core import hookimpl
from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest, EditResult, OutputVideo
from kling_core.contract.status import JobStatus, Queued, Running, Succeeded
from kling_core.errors import JobTimeoutError, SubmitUncertainError, ValidationError
from kling_core.joblog import JobLog, canonical
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle, Provider
from kling_core.settings import PollSettings

URL = "https://media.example/in.mp4"
CAPS = dict(models=(ModelCapabilities("kling-o1"),), accepts_webhook=True, accepts_local_files=False)


class Host:
    """What the fake host holds: jobs by id, how many polls each takes, every submit body."""

    submits: ClassVar[list[EditRequest]] = []
    jobs: ClassVar[dict[str, int]] = {}  # job id -> polls left before it succeeds (-1: never)
    by_key: ClassVar[dict[str, str]] = {}
    cancelled: ClassVar[list[str]] = []
    lose_answers: ClassVar[int] = 0


class DurableFake(Provider):
    """A host whose jobs outlive the client that submitted them (unlike tests/fake_provider.py)."""

    name = "durable"
    capabilities = ProviderCapabilities(**CAPS, can_cancel=True)  # type: ignore[arg-type]
    default_poll = PollSettings(initial=1.0, factor=1.0, max=1.0, jitter=0.0, deadline=60.0)

    async def submit(self, request: EditRequest) -> JobHandle:
        Host.submits.append(request)
        job_id = f"job-{len(Host.submits)}"
        Host.jobs[job_id] = int(request.options.get("polls", 1))
        Host.by_key[str(request.client_key)] = job_id
        if Host.lose_answers:
            Host.lose_answers -= 1
            raise SubmitUncertainError("answer lost", provider=self.name, client_key=request.client_key)
        return JobHandle(provider=self.name, job_id=job_id, model=request.model)

    async def status(self, handle: JobHandle) -> JobStatus:
        left = Host.jobs[handle.job_id]
        if left != 0:
            Host.jobs[handle.job_id] = left - 1 if left > 0 else -1
            return Running(handle.job_id, self.name, progress=10.0) if left % 2 else Queued(handle.job_id, self.name)
        result = EditResult(video=OutputVideo(url=f"https://cdn.example/{handle.job_id}.mp4"), job_id=handle.job_id,
                            provider=self.name, model="kling-o1")
        return Succeeded(handle.job_id, self.name, result=result)

    async def cancel(self, handle: JobHandle) -> bool:
        Host.cancelled.append(handle.job_id)
        return True


class ReconcilingFake(DurableFake):
    name = "reconciling"
    capabilities = ProviderCapabilities(**CAPS, can_reconcile=True)  # type: ignore[arg-type]

    async def reconcile(self, client_key: str) -> JobHandle | None:
        job_id = Host.by_key.get(client_key)
        return JobHandle(provider=self.name, job_id=job_id, client_key=client_key) if job_id else None


class Plugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(DurableFake)
        register(ReconcilingFake)


@pytest.fixture(autouse=True)
def _reset() -> None:
    Host.submits, Host.jobs, Host.by_key, Host.cancelled, Host.lose_answers = [], {}, {}, [], 0


class Clock:
    """Simulated time: sleeping advances it at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def _nap(_: float) -> None:
    return None


def client(tmp_path: Path, provider: str = "durable", **config: Any) -> AsyncEditClient:
    """A fresh client (a new process, as far as the host and the log are concerned)."""
    host = PluginHost(entrypoints=False, plugins=[("fakes", Plugin())])
    clock = Clock()
    return AsyncEditClient(provider=provider, config=config_from_document(config), host=host, sleep=clock.sleep,
                           clock=clock, journal=JobLog(tmp_path / "state"))


def run(tmp_path: Path, *, provider: str = "durable", new: bool = False, **fields: Any) -> tuple[str, bool, str]:
    """`kling edit URL -p x` without saving: (job id, picked up?, client key)."""
    c = client(tmp_path, provider)
    fields.setdefault("prompt", "x")
    request = c.request(URL, fields.pop("prompt"), provider=provider, **fields)
    started = asyncio.run(c.start(request, new=new))
    asyncio.run(c.wait(started.handle))
    return started.handle.job_id, started.resumed, started.client_key


def test_the_same_request_twice_is_one_submit_until_its_result_is_saved(tmp_path: Path) -> None:
    first = run(tmp_path)
    again = run(tmp_path)
    assert again == (first[0], True, first[2]) and len(Host.submits) == 1
    assert first[2].endswith("-1") and Host.submits[0].client_key == first[2]
    c = client(tmp_path)
    assert c.job(first[2]).state == "succeeded"  # known, not saved: still this job
    c.journal.transition(first[2], "saved")  # type: ignore[union-attr]
    take2 = run(tmp_path)
    assert take2[1] is False and take2[2].endswith("-2") and take2[2][:-2] == first[2][:-2]
    assert len(Host.submits) == 2


def test_new_always_makes_a_new_job(tmp_path: Path) -> None:
    first = run(tmp_path)
    second = run(tmp_path, new=True)
    assert not second[1] and second[0] != first[0] and len(Host.submits) == 2
    third = run(tmp_path)  # picks up the newest take
    assert third == (second[0], True, second[2])
    with pytest.raises(ValidationError, match=r"^new: "):
        c = client(tmp_path)
        asyncio.run(c.start(c.request(URL, "x", client_key="mine"), new=True))


def test_what_makes_a_different_job(tmp_path: Path) -> None:
    base = run(tmp_path)
    assert run(tmp_path, webhook_url="https://hooks.example/a")[1]  # the webhook does not change the video
    assert not run(tmp_path, prompt="y")[1]
    assert not run(tmp_path, options={"polls": 3})[1]  # options do
    assert not run(tmp_path, quality="std")[1]
    assert not run(tmp_path, provider="reconciling")[1]
    assert len(Host.submits) == 5 and base[2] != run(tmp_path, prompt="y")[2]


def test_local_media_is_known_by_its_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "sub" / "b.mp4"
    b.parent.mkdir()
    a.write_bytes(b"video bytes")
    shutil.copy(a, b)
    req_a = EditRequest(prompt="x", video=str(a), images=(str(a), URL))
    req_b = EditRequest(prompt="x", video=str(b), images=(str(b), URL))
    ca, cb = canonical(req_a, "mock"), canonical(req_b, "mock")
    assert ca.identity == cb.identity and ca.media["video"] == ca.media["images[0]"]
    assert ca.document["video"] == str(a.absolute()) and ca.document["images"][1] == URL
    b.write_bytes(b"other bytes")
    assert canonical(req_b, "mock").identity != ca.identity


def test_an_explicit_client_key_names_one_job(tmp_path: Path) -> None:
    first = run(tmp_path, client_key="mine")
    client(tmp_path).journal.transition("mine", "saved")  # type: ignore[union-attr]
    assert run(tmp_path, client_key="mine") == (first[0], True, "mine")  # saved or not: the same job
    with pytest.raises(ValidationError, match="'mine' was already used for a different request"):
        run(tmp_path, client_key="mine", prompt="other")
    assert len(Host.submits) == 1


def test_an_uncertain_submit_is_listed_and_settled_by_hand(tmp_path: Path) -> None:
    Host.lose_answers = 1
    with pytest.raises(SubmitUncertainError) as info:
        run(tmp_path)
    text = str(info.value)
    key = client(tmp_path).jobs(state="uncertain")[0].client_key
    for command in (f"kling jobs show {key}", f"kling jobs resume {key} --job-id ID", f"kling jobs forget {key} --force"):
        assert command in text
    assert "reconcile with client key" not in text
    # Re-running refuses (never a second submit) and says the same.
    with pytest.raises(SubmitUncertainError, match=f"kling jobs forget {key} --force"):
        run(tmp_path)
    assert len(Host.submits) == 1
    # The user found the job on the dashboard: attach its id; resume waits and saves it.
    c = client(tmp_path)
    result = asyncio.run(c.resume(key, job_id="job-1"))
    assert result.job_id == "job-1" and len(Host.submits) == 1
    record = c.job(key)
    assert record.job_id == "job-1" and record.state == "succeeded"
    assert [e.state for e in record.events] == ["submitting", "uncertain", "submitted", "running", "succeeded"]
    assert run(tmp_path) == ("job-1", True, key)


def test_forgetting_an_uncertain_job_needs_force_then_the_command_submits_again(tmp_path: Path) -> None:
    Host.lose_answers = 1
    with pytest.raises(SubmitUncertainError):
        run(tmp_path)
    c = client(tmp_path)
    key = c.jobs()[0].client_key
    with pytest.raises(ValidationError, match=f"job: {key} is uncertain, not finished"):
        c.forget(key)
    assert c.forget(key, force=True).client_key == key
    _job_id, resumed, new_key = run(tmp_path)
    assert not resumed and new_key != key and len(Host.submits) == 2  # a new take, never the old key


def test_a_host_that_can_look_up_keys_settles_it_by_itself(tmp_path: Path) -> None:
    Host.lose_answers = 1
    with pytest.raises(SubmitUncertainError, match="kling jobs resume"):
        run(tmp_path, provider="reconciling")
    assert run(tmp_path, provider="reconciling")[:2] == ("job-1", True)
    assert len(Host.submits) == 1
    # The host never saw it: `jobs resume` says so; the command itself then submits under the same key.
    Host.lose_answers = 1
    with pytest.raises(SubmitUncertainError):
        run(tmp_path, provider="reconciling", prompt="y")
    key = client(tmp_path, "reconciling").jobs(state="uncertain")[0].client_key
    Host.by_key.pop(key)
    with pytest.raises(ValidationError, match="the host has no such job"):
        asyncio.run(client(tmp_path, "reconciling").resume(key))
    assert run(tmp_path, provider="reconciling", prompt="y")[1:] == (False, key)


def test_a_claim_left_by_a_killed_process_is_not_submitted_again(tmp_path: Path) -> None:
    c = client(tmp_path)
    request = c.request(URL, "x")
    canon = canonical(request, "durable")
    from kling_core.joblog import base_key

    assert c.journal is not None
    base = base_key(canon.identity, c.journal.salt())
    c.journal.claim(provider="durable", model="kling-o1", request=canon.stored(), request_sha256=canon.request_sha256,
                    base_key=base)
    with sqlite3.connect(c.journal.path) as conn:  # the submitting process was kill -9'ed
        conn.execute("UPDATE jobs SET owner = ?", (f"{os.uname().nodename}:999999999",))
    with pytest.raises(SubmitUncertainError, match="unknown outcome"):
        run(tmp_path)
    assert Host.submits == [] and client(tmp_path).jobs()[0].state == "uncertain"


def test_a_timeout_names_the_job_and_the_command_that_resumes_it(tmp_path: Path) -> None:
    c = client(tmp_path)
    request = c.request(URL, "x", options={"polls": -1})
    with pytest.raises(JobTimeoutError) as info:
        asyncio.run(c.edit(request, timeout=5))
    key = c.jobs()[0].client_key
    text = str(info.value)
    assert "job-1" in text and f"kling jobs resume {key}" in text and "not cancelled" in text
    assert Host.cancelled == [] and c.job(key).state == "running" and "after waiting 5s" in (c.job(key).error or "")
    for bad in (0, -1, float("inf"), float("nan"), 1e9):
        with pytest.raises(ValidationError, match=r"^timeout: "):
            asyncio.run(c.edit(request, timeout=bad))


def test_a_sub_second_timeout_reads_as_such(tmp_path: Path) -> None:
    c = client(tmp_path)
    with pytest.raises(JobTimeoutError, match=r"did not finish within 0\.5s; it was not cancelled") as info:
        asyncio.run(c.edit(c.request(URL, "x", options={"polls": -1}), timeout=0.5))
    assert info.value.waited == 0.5 and "after waiting 0.5s" in (c.jobs()[0].error or "")
    assert "within 0.5s;" in str(JobTimeoutError(provider="p", job_id="j", waited=0.5))
    assert "within 30s;" in str(JobTimeoutError(provider="p", job_id="j", waited=30))


def test_cancel_on_timeout_cancels_on_hosts_that_can(tmp_path: Path) -> None:
    c = client(tmp_path, providers={"durable": {"cancel_on_timeout": True}})
    with pytest.raises(JobTimeoutError, match="was cancelled \\(cancel_on_timeout\\)"):
        asyncio.run(c.edit(c.request(URL, "x", options={"polls": -1}), timeout=3))
    assert Host.cancelled == ["job-1"] and c.jobs()[0].state == "cancelled"
    # A cancelled job is finished: the same command submits a new take.
    assert not run(tmp_path, options={"polls": 1})[1] and len(Host.submits) == 2


def test_the_sync_client_lists_shows_and_forgets(tmp_path: Path) -> None:
    from kling_core import EditClient

    run(tmp_path)
    host = PluginHost(entrypoints=False, plugins=[("fakes", Plugin())])
    with EditClient(provider="durable", config=config_from_document({}), host=host, sleep=_nap,
                    journal=JobLog(tmp_path / "state")) as c:
        [record] = c.jobs(since="1h", provider="durable", state="unfinished")
        assert c.job("job-1") == c.job(record.client_key)
        assert c.pending(c.request(URL, "x")) is not None
        with pytest.raises(ValidationError, match=r"^since: "):
            c.jobs(since="yesterday")
        with pytest.raises(ValidationError, match=r"^job: "):
            c.job("no-such-job")
        assert c.forget(record.client_key, force=True).job_id == "job-1"
        assert c.jobs() == []


def test_a_key_from_the_old_json_journal_still_names_its_job(tmp_path: Path) -> None:
    import json

    from kling_core.joblog.migrate import legacy_request_hash

    old = tmp_path / "state" / "jobs"
    old.mkdir(parents=True)
    request = client(tmp_path).request(URL, "x", client_key="old-1")
    digest = legacy_request_hash(request).removeprefix("legacy:")
    handle = {"provider": "durable", "job_id": "job-9", "model": "kling-o1", "client_key": "old-1", "urls": {},
              "submitted_at": 1.0, "data": {}}
    (old / "old-1.json").write_text(json.dumps({"client_key": "old-1", "provider": "durable",
                                                "request_sha256": digest, "state": "submitted", "handle": handle}))
    Host.jobs["job-9"] = 0
    assert run(tmp_path, client_key="old-1") == ("job-9", True, "old-1")
    assert Host.submits == [] and (tmp_path / "state" / "jobs.migrated" / "old-1.json").is_file()
    with pytest.raises(ValidationError, match="'old-1' was already used for a different request"):
        run(tmp_path, client_key="old-1", prompt="other")
