"""The blocking EditClient (and ``batch``) under Ctrl-C, misuse and clean-up.

Ctrl-C is sent as the terminal sends it: SIGINT to the main thread, which is blocked in the
call. The provider sends it from the exact step the test is about, so nothing here is timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fake_provider import FakeProvider

import kling_core
from kling_core import hookimpl
from kling_core.client import EditClient
from kling_core.config import config_from_document
from kling_core.contract.models import EditRequest
from kling_core.errors import KlingError, ValidationError
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle

URL = "https://media.example/in.mp4"

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")


async def _at_once(stage: str) -> None:
    return None


class GatedFake(FakeProvider):
    """The scripted fake, with a hook before its upload step (prepare) and inside its submit."""

    name = "gated"
    hold: ClassVar[Callable[[str], Awaitable[None]]] = _at_once

    async def prepare(self, request: EditRequest) -> EditRequest:
        await type(self).hold("prepare")
        return request

    async def submit(self, request: EditRequest) -> JobHandle:
        await type(self).hold("submit")
        return await super().submit(request)


class GatedPlugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(GatedFake)


@pytest.fixture(autouse=True)
def _reset() -> None:
    FakeProvider.script = None
    FakeProvider.submits = []
    GatedFake.hold = _at_once


async def _nap(_: float) -> None:
    return None


def gated_client(tmp_path: Path) -> EditClient:
    host = PluginHost(entrypoints=False, plugins=[("gated", GatedPlugin())])
    return EditClient(provider="gated", config=config_from_document({}), host=host, sleep=_nap,
                      journal=JobLog(tmp_path))


def ctrl_c() -> None:
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() != main
    signal.pthread_kill(main, signal.SIGINT)


def hold_at(stage: str, stopped: threading.Event) -> Callable[[str], Awaitable[None]]:
    """A hook that presses Ctrl-C at ``stage`` and then waits until it is cancelled."""

    async def hold(at: str) -> None:
        if at != stage:
            return
        ctrl_c()
        try:
            await asyncio.Event().wait()  # an upload (or a host) that does not answer
        except asyncio.CancelledError:
            stopped.set()
            raise

    return hold


def test_ctrl_c_before_the_submit_stops_the_call_and_nothing_is_submitted(tmp_path: Path) -> None:
    stopped = threading.Event()
    GatedFake.hold = hold_at("prepare", stopped)
    client = gated_client(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        client.edit(client.request(URL, "make it winter"))
    # Stopped on the loop before the caller saw KeyboardInterrupt, not left to go on and submit.
    assert stopped.is_set()
    client.close()
    assert FakeProvider.submits == []


def test_ctrl_c_during_the_submit_logs_it_uncertain_before_returning(tmp_path: Path) -> None:
    stopped = threading.Event()
    GatedFake.hold = hold_at("submit", stopped)
    client = gated_client(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        client.submit(client.request(URL, "make it winter", client_key="k-1"))
    assert stopped.is_set()
    record = client.job("k-1")
    assert record.state == "uncertain"  # the job may exist: never resubmitted blindly
    client.close()


def _manifest(tmp_path: Path, lines: int) -> Path:
    manifest = tmp_path / "edits.jsonl"
    manifest.write_text("".join(
        json.dumps({"video": URL, "prompt": f"make it winter {i}", "output": str(tmp_path / f"out{i}.mp4")}) + "\n"
        for i in range(lines)))
    return manifest


def test_ctrl_c_in_a_batch_stays_keyboard_interrupt_and_stops_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import kling_core.batches.runner as runner

    # The batch lets a line's start finish for SUBMIT_GRACE seconds after a cancel; this start
    # never would, so spare the test that wait.
    monkeypatch.setattr(runner, "SUBMIT_GRACE", 0.0)
    stopped = threading.Event()
    GatedFake.hold = hold_at("prepare", stopped)
    client = gated_client(tmp_path)
    results = kling_core.batch(_manifest(tmp_path, 3), client=client, concurrency=1)
    with pytest.raises(KeyboardInterrupt):
        next(results)
    assert stopped.is_set()
    client.close()
    assert FakeProvider.submits == []


def test_a_batch_step_slow_to_stop_does_not_replace_the_keyboard_interrupt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step is given no time to unwind, so the generator is still running when batch closes it."""
    import kling_core.client.sync as sync

    monkeypatch.setattr(sync, "STOP_GRACE", 0.0)
    release = asyncio.Event()
    cancelled = threading.Event()

    async def stubborn(at: str) -> None:
        ctrl_c()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            await release.wait()  # its clean-up takes longer than the caller waits
            raise

    GatedFake.hold = stubborn
    client = gated_client(tmp_path)
    results = kling_core.batch(_manifest(tmp_path, 2), client=client, concurrency=1)
    with pytest.raises(KeyboardInterrupt):  # not RuntimeError: aclose(): ... already running
        next(results)
    client._portal.loop.call_soon_threadsafe(release.set)
    client.close()
    assert cancelled.is_set()
    assert FakeProvider.submits == []


def test_a_blocking_call_from_the_clients_own_callback_is_refused_not_a_hang(tmp_path: Path) -> None:
    client = gated_client(tmp_path)
    refused: list[KlingError] = []

    def on_submit(handle: JobHandle) -> None:
        try:
            client.status(handle)  # on_submit runs on the client's loop: this would wait for itself
        except ValidationError as exc:
            refused.append(exc)

    finished: list[str] = []

    def run() -> None:
        finished.append(client.edit(client.request(URL, "make it winter"), on_submit=on_submit).job_id)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a guard against the hang this test is about, not a measurement
    assert not worker.is_alive(), "the blocking call from on_submit waited for its own loop"
    assert finished == ["job-1"]
    assert len(refused) == 1 and "async client" in str(refused[0])
    client.close()


def _portal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kling-portal" and t.is_alive()]


def test_a_failing_constructor_leaves_no_loop_thread_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kling.toml").write_text("default_provider = 3\n")
    before = _portal_threads()
    with pytest.raises(KlingError):
        EditClient()
    assert _portal_threads() == before


def test_close_twice_is_harmless_and_a_call_after_close_is_a_typed_error(tmp_path: Path) -> None:
    client = gated_client(tmp_path)
    request = client.request(URL, "make it winter")
    client.close()
    client.close()
    with client:  # __exit__ closes once more
        pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValidationError, match="closed"):
            client.submit(request)
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert FakeProvider.submits == []


def _open_handles(db: Path) -> int:
    """Open file descriptors of this process on the SQLite file ``db`` (and its -wal/-shm)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(db))
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_close_closes_the_job_log_the_client_opened_and_not_one_passed_in(tmp_path: Path) -> None:
    client = EditClient(provider="mock")
    assert client.aio.journal is not None
    own = client.aio.journal.path
    client.jobs()
    assert _open_handles(own) > 0
    client.close()
    assert _open_handles(own) == 0

    given = JobLog(tmp_path)
    with EditClient(provider="mock", journal=given) as borrowing:
        borrowing.jobs()
    assert _open_handles(given.path) > 0  # the caller's log: still open for the caller
    given.close()
    assert _open_handles(given.path) == 0
