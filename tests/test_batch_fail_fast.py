"""--fail-fast while another line's submit is still on the wire.

The batch stops at the failed line and gives that submit ``SUBMIT_GRACE`` to bring its job id
into the job log. The job then exists on the host (and is billed), so the line must be reported
with it -- ``not_run`` but ``submitted``, with its job id -- in the results, the summary and the
results JSONL, as any other job --fail-fast leaves running. A re-run picks it up.

No timing: the slow submit is held until the failed line has been reported, then let go, so it
lands exactly while the stopped worker waits out the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kling_core import hookimpl
from kling_core.batches import load_plan
from kling_core.batches.results import BatchLineResult
from kling_core.batches.runner import run_plan
from kling_core.cli import batch_cmd
from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import Failed, JobError, JobStatus
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle, Provider
from kling_core.settings import PollSettings


class SlowSubmit(Provider):
    """The "slow" line's submit waits for ``go``; the "fail" line's job fails; no other job ends."""

    name = "slowsubmit"
    title = "a submit held on the wire"
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),), accepts_local_files=False)
    default_poll = PollSettings(initial=0.0, factor=1.0, max=0.0, jitter=0.0, deadline=60.0)
    go: ClassVar[asyncio.Event | None] = None
    submitted: ClassVar[list[str]] = []

    async def submit(self, request: EditRequest) -> JobHandle:
        if request.prompt == "slow":
            assert type(self).go is not None
            await type(self).go.wait()
        type(self).submitted.append(request.prompt)
        return JobHandle(provider=self.name, job_id=f"job-{request.prompt}", model=request.model)

    async def status(self, handle: JobHandle) -> JobStatus:
        if handle.job_id == "job-fail":
            return Failed(handle.job_id, self.name, JobError("the host refused the edit"))
        await asyncio.Event().wait()  # still running when the batch stops waiting for it
        raise AssertionError("unreachable")


class SlowUpload(SlowSubmit):
    """The "slow" line is held in ``prepare`` (its upload), before anything is claimed or sent."""

    name = "slowupload"

    async def prepare(self, request: EditRequest) -> EditRequest:
        if request.prompt == "slow":
            assert type(self).go is not None
            await type(self).go.wait()
        return request


class _Plugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(SlowSubmit)
        register(SlowUpload)


@pytest.fixture(autouse=True)
def _reset() -> None:
    SlowSubmit.go, SlowSubmit.submitted = None, []


async def _nap(_: float) -> None:
    await asyncio.sleep(0)


def _client(tmp_path: Path, provider: str = "slowsubmit") -> AsyncEditClient:
    return AsyncEditClient(provider=provider, config=config_from_document({}), sleep=_nap,
                           host=PluginHost(entrypoints=False, plugins=[("slowsubmit", _Plugin())]),
                           journal=JobLog(tmp_path / "state"))


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.jsonl"
    rows = [{"video": "https://media.example/a.mp4", "prompt": "slow"},
            {"video": "https://media.example/b.mp4", "prompt": "fail"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _releasing_at_the_failure(*args: Any, **kwargs: Any) -> AsyncGenerator[BatchLineResult, None]:
    """``run_plan``, letting the held submit go once the failed line is reported: the batch's
    workers are stopped on the very next step, before that submit can finish."""
    SlowSubmit.go = asyncio.Event()

    async def results() -> AsyncGenerator[BatchLineResult, None]:
        async with contextlib.aclosing(run_plan(*args, **kwargs)) as inner:
            async for result in inner:
                if result.state == "failed":
                    assert SlowSubmit.go is not None
                    SlowSubmit.go.set()
                yield result

    return results()


def test_a_job_submitted_during_the_grace_is_reported_with_its_id(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)

    async def run() -> dict[int, BatchLineResult]:
        async with _client(tmp_path) as client:
            plan = load_plan(client, manifest)
            return {r.line: r async for r in _releasing_at_the_failure(client, plan, concurrency=2, fail_fast=True)}

    results = asyncio.run(run())
    assert SlowSubmit.submitted == ["fail", "slow"]  # the slow line's job exists on the host
    assert results[2].state == "failed" and results[2].job_id == "job-fail"
    slow = results[1]
    assert (slow.state, slow.action, slow.job_id) == ("not_run", "submitted", "job-slow")
    assert "not waited for" in (slow.error or "")

    async def rerun_plan() -> Any:
        async with _client(tmp_path) as client:
            return load_plan(client, manifest).lines[0]

    again = asyncio.run(rerun_plan())
    assert (again.action, again.prior_job_id) == ("pickup", "job-slow")  # picked up, never sent twice


def test_the_summary_and_results_file_name_that_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(batch_cmd, "run_plan", _releasing_at_the_failure)
    manifest = _manifest(tmp_path)
    results_path = tmp_path / "results.jsonl"

    async def run() -> int:
        async with _client(tmp_path) as client:
            plan = load_plan(client, manifest)
            return await batch_cmd.execute(client, plan, concurrency=2, fail_fast=True, timeout=None,
                                           as_json=False, results_path=str(results_path), quiet=False)

    assert asyncio.run(run()) == 1
    err = capsys.readouterr().err
    # Reported as the jobs --fail-fast leaves running are: its job named as it lands, then its line.
    assert "line 1: submitted slowsubmit job job-slow" in err
    assert "line 1: not_run (slowsubmit job job-slow): not run: the batch stopped at a failed line" in err
    table = err[err.index("lines not saved:"):].splitlines()
    row = next(text.split() for text in table if text.split()[:1] == ["1"])
    assert row[1:4] == ["not_run", "slowsubmit", "job-slow"]
    # Counted as submitted by this run, not as "not started".
    assert re.search(r"saved\s+0\s+submitted\s+2\n", err) and re.search(r"not run\s+1\s+not started\s+0\n", err)
    docs = {d["line"]: d for d in map(json.loads, results_path.read_text().splitlines())}
    assert (docs[1]["state"], docs[1]["action"], docs[1]["job_id"]) == ("not_run", "submitted", "job-slow")


def test_a_line_still_uploading_when_the_batch_stops_is_never_submitted(tmp_path: Path) -> None:
    """The grace is for a submit on the wire; a line still uploading is stopped at once, even
    though its upload would have finished within the grace."""
    manifest = _manifest(tmp_path)

    async def run() -> dict[int, BatchLineResult]:
        SlowSubmit.go = asyncio.Event()
        async with _client(tmp_path, "slowupload") as client:
            plan = load_plan(client, manifest)
            out: dict[int, BatchLineResult] = {}
            async with contextlib.aclosing(run_plan(client, plan, concurrency=2, fail_fast=True)) as results:
                async for result in results:
                    if result.state == "failed":
                        # The upload could finish well inside the submit grace: it must be stopped anyway.
                        asyncio.get_running_loop().call_later(0.2, SlowSubmit.go.set)
                    out[result.line] = result
            return out

    results = asyncio.run(run())
    assert SlowSubmit.submitted == ["fail"]  # the held line never reached the host
    assert (results[1].state, results[1].action, results[1].job_id) == ("not_run", "not_started", None)
    assert JobLog(tmp_path / "state").get(results[1].client_key) is None  # nothing claimed either
