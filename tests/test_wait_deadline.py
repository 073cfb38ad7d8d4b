"""A wait's timeout bounds each status poll too: a host slow to answer one (its request timeout
times its retries) ends the wait at the deadline with the usual resumable JobTimeoutError, and
the poll that is cut short never takes the job (or the mock's render) with it."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from fake_provider import FakePlugin, FakeProvider
from kling_core_plugins.mock.provider import output_path
from media_fixtures import sample
from mock_gate import gate_renders
from test_client import FakeClock

from kling_core.client import AsyncEditClient
from kling_core.config import KlingConfig, config_from_document
from kling_core.contract.models import EditResult
from kling_core.contract.status import JobStatus
from kling_core.errors import JobTimeoutError
from kling_core.joblog import JobLog
from kling_core.joblog.hints import resume_command
from kling_core.media import SampleMedia
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle
from kling_core.settings import MediaSettings, ProviderSettings

__all__ = ["sample"]

URL = "https://media.example/in.mp4"
# Only guards against a hang when the deadline is not applied; no assertion is timed.
HANG_GUARD = 20.0


@pytest.fixture(autouse=True)
def _reset() -> None:
    FakeProvider.script = None
    FakeProvider.submits = []
    FakeProvider.cancels = []


def _fake_client(tmp_path: Path, clock: FakeClock) -> AsyncEditClient:
    host = PluginHost(entrypoints=False, plugins=[("fake", FakePlugin())])
    return AsyncEditClient(provider="fake", config=config_from_document({}), host=host, sleep=clock.sleep,
                           clock=clock, journal=JobLog(tmp_path), rng=random.Random(1))


class HungStatus:
    """A status poll that never answers until released; records that it was cancelled."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0
        self.cancelled = 0

    async def __call__(self, handle: JobHandle) -> JobStatus:
        self.calls += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("the hung poll was released")


def test_a_hung_status_poll_ends_the_wait_at_its_timeout_and_the_job_stays_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    client = _fake_client(tmp_path, clock)

    async def go() -> tuple[JobTimeoutError, HungStatus, JobHandle, EditResult]:
        handle = await client.submit(client.request(URL, "grade it"))
        prov = client.provider("fake")
        hung = HungStatus()
        monkeypatch.setattr(prov, "follow", hung)
        # Before the fix the wait awaited the poll with no bound: the guard fired instead.
        with pytest.raises(JobTimeoutError) as err:
            await asyncio.wait_for(client.wait(handle, timeout=0.05), HANG_GUARD)
        monkeypatch.undo()  # the host answers again: the same job is picked up and finishes
        result = await asyncio.wait_for(client.wait(handle), HANG_GUARD)
        return err.value, hung, handle, result

    error, hung, handle, result = asyncio.run(go())
    assert (hung.calls, hung.cancelled) == (1, 1)  # the unanswered status request was abandoned
    assert handle.client_key is not None
    text = str(error)
    assert f"job {handle.job_id}" in text and "did not finish within" in text
    assert "it was not cancelled" in text and resume_command(handle.client_key) in text
    assert FakeProvider.cancels == []  # cancel_on_timeout is off: the job was left running
    assert len(FakeProvider.submits) == 1  # cutting a poll never submits again
    assert result.job_id == handle.job_id


def test_the_poll_bound_is_the_time_left_not_a_fixed_grace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeout shorter than the grace a poll due at the deadline gets is itself the bound."""
    clock = FakeClock()
    client = _fake_client(tmp_path, clock)
    bounds: list[float] = []

    async def go() -> None:
        handle = await client.submit(client.request(URL, "grade it"))
        monkeypatch.setattr(client.provider("fake"), "follow", HungStatus())
        real_timeout = asyncio.timeout

        def spy(delay: float | None) -> asyncio.Timeout:
            bounds.append(float(delay or 0.0))
            return real_timeout(delay)

        monkeypatch.setattr(asyncio, "timeout", spy)
        with pytest.raises(JobTimeoutError):
            await asyncio.wait_for(client.wait(handle, timeout=0.05), HANG_GUARD)

    asyncio.run(go())
    assert bounds == [pytest.approx(0.05)]


def test_a_status_polls_own_timeout_error_is_not_taken_for_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    client = _fake_client(tmp_path, clock)

    async def broken(handle: JobHandle) -> JobStatus:
        raise TimeoutError("the provider's own")

    async def go() -> None:
        handle = await client.submit(client.request(URL, "grade it"))
        monkeypatch.setattr(client.provider("fake"), "follow", broken)
        await client.wait(handle, timeout=30)

    with pytest.raises(TimeoutError, match="the provider's own") as err:
        asyncio.run(go())
    assert not isinstance(err.value, JobTimeoutError)


@pytest.mark.ffmpeg
def test_a_mock_poll_cut_at_the_deadline_leaves_its_render_running_and_resumable(
    sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = KlingConfig(default_provider="mock", media=MediaSettings(work_dir=str(tmp_path / "work")),
                         providers={"mock": ProviderSettings()})
    client = AsyncEditClient(config=config, journal=JobLog(tmp_path / "state"), environ={})
    p = client.provider("mock")
    gate = gate_renders(p, monkeypatch)
    real_follow = p.follow
    cut: list[str] = []

    async def watched_follow(handle: JobHandle) -> JobStatus:
        try:
            return await real_follow(handle)
        except asyncio.CancelledError:
            cut.append(handle.job_id)
            raise

    monkeypatch.setattr(p, "follow", watched_follow)

    async def go() -> tuple[JobHandle, EditResult]:
        handle = await client.submit(client.request(str(sample.video), "make it winter", images=[], elements=[]))
        # Shorter than the mock's own wait in one poll, so the deadline cuts that wait.
        with pytest.raises(JobTimeoutError):
            await asyncio.wait_for(client.wait(handle, timeout=0.05), HANG_GUARD)
        task = p._tasks[handle.job_id]  # type: ignore[attr-defined]
        assert not task.done()  # the poll was cut, the render was not
        gate.set()
        return handle, await asyncio.wait_for(client.wait(handle), 120)

    handle, result = asyncio.run(go())
    assert cut == [handle.job_id]
    assert output_path(result).is_file()
    assert p.store.load(handle.job_id).state == "succeeded"  # type: ignore[union-attr]
    assert client.journal is not None and handle.client_key is not None
    record = client.journal.get(handle.client_key)
    assert record is not None and record.state == "succeeded"
