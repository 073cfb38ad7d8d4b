"""MockProvider: hosted-job behaviour over a local, deterministic ffmpeg render."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from kling_core.sdk import (
    Cancelled,
    EditRequest,
    EditResult,
    Failed,
    JobError,
    JobHandle,
    JobStatus,
    KlingError,
    ModelCapabilities,
    OutputVideo,
    PollSettings,
    Problem,
    Provider,
    ProviderCapabilities,
    ProviderContext,
    ProviderError,
    Queued,
    Running,
    Succeeded,
    Timings,
    ValidationError,
    find_ffmpeg,
    local_path,
    probe_video,
    run_ffmpeg,
    structure,
    unstructure,
    work_dir,
)
from kling_core_plugins.mock import render
from kling_core_plugins.mock.capabilities import CAPABILITIES
from kling_core_plugins.mock.failures import FAILURES, submit_error
from kling_core_plugins.mock.jobs import JobRecord, JobStore, check_job_id, new_job_id
from kling_core_plugins.mock.media_check import Inspected, inspect
from kling_core_plugins.mock.options import MockOptions, config_options, effective, request_problems

# How often a queued job looks for a cancel request from another process, and how long a
# cancel waits for the process running the job to stop it.
_POLL_STEP = 0.1
_CANCEL_WAIT = 10.0
# How long a waiting caller's poll (follow) waits on a render running in this process before it
# reports: the end is seen the moment it comes, not a poll interval later, and progress still
# reaches the caller a few times a second.
_FOLLOW_WAIT = 0.25
# Inspections kept for reuse (prepare, then submit, probe the same files once).
_INSPECTED_KEEP = 16


class _CancelRequested(Exception):
    pass


class MockProvider(Provider):
    name: ClassVar[str] = "mock"
    title: ClassVar[str] = "Offline mock: deterministic ffmpeg render, no key, no network"
    capabilities: ClassVar[ProviderCapabilities] = CAPABILITIES
    # Renders take seconds, not minutes: poll briskly so a local edit returns promptly.
    default_poll: ClassVar[PollSettings] = PollSettings(initial=0.02, factor=1.5, max=0.1, jitter=0.1, deadline=900.0)

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self.options: MockOptions = config_options(ctx.settings.options)
        self.root = work_dir(ctx.work_dir, ctx.media, "mock", ctx.environ)
        self.store = JobStore(self.root / "jobs")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, int] = {}
        self._ffmpeg: str | None = None
        self._inspected: dict[str, Inspected] = {}  # job id -> what submit() probed
        # What the media of a localized request looked like when probed (see _media_key).
        self._probed: OrderedDict[tuple[Any, ...], Inspected] = OrderedDict()

    @property
    def ffmpeg(self) -> str:
        if self._ffmpeg is None:
            self._ffmpeg = find_ffmpeg(self.ctx.media, self.ctx.environ)
        return self._ffmpeg

    def _model(self, request: EditRequest) -> ModelCapabilities:
        model = self.capabilities.model(request.model)
        if model is None:
            raise ValidationError.single("model", f"{request.model!r} is not offered by the mock")
        return model

    # -- checks ----------------------------------------------------------------------
    def check(self, request: EditRequest) -> list[Problem]:
        return request_problems(request.options)

    async def _inspect(self, request: EditRequest) -> Inspected:
        """Localize and probe the request's media, once per job: prepare() localizes and probes,
        and submit() (given prepare's request) reuses that while the files are unchanged."""
        key = _media_key(request)
        found = self._probed.get(key) if key is not None else None
        if found is not None and key is not None:
            self._probed.move_to_end(key)
            return attrs.evolve(found, request=request)  # same media; the other fields are this request's
        found = await inspect(
            request,
            self._model(request),
            media=self.ctx.media,
            download_dir=self.root / "downloads",
            transport=None,  # downloads always go through the SSRF-guarded real transport
        )
        stored = _media_key(found.request)
        if stored is not None:
            self._probed[stored] = found
            while len(self._probed) > _INSPECTED_KEEP:
                self._probed.popitem(last=False)
        return found

    async def prepare(self, request: EditRequest) -> EditRequest:
        """Download URLs, probe every file and check it against the limits (before any job)."""
        effective(self.options, request.options)
        return (await self._inspect(request)).request

    async def dry_run(self, request: EditRequest) -> Mapping[str, Any]:
        opts = effective(self.options, request.options)
        found = await self._inspect(request)
        plan = render.plan(found.request, found.video, list(found.images), list(found.frontals))
        report = plan.report()  # the render's report, less what only the rendered file can say
        report["model"], report["edit_mode"] = found.request.model, found.request.edit_mode
        return {"valid": True, "fail": opts.fail, "plan": report}

    # -- submit ----------------------------------------------------------------------
    async def submit(self, request: EditRequest) -> JobHandle:
        opts = effective(self.options, request.options)
        found = await self._inspect(request)  # prepare()'s probe while the files are unchanged; refuses bad media
        if opts.fail and FAILURES[opts.fail].phase == "submit":
            raise submit_error(opts.fail, provider=self.name, retry_after=opts.retry_after)
        now = self.ctx.clock()
        record = JobRecord(
            job_id=new_job_id(),
            model=request.model,
            state="queued",
            submitted_at=now,
            request=unstructure(found.request),
            latency=opts.latency,
            fail=opts.fail,
            retry_after=opts.retry_after,
            client_key=request.client_key,
        )
        # Lock before the record exists, so no other process can mistake it for an orphan.
        fd = self.store.acquire(record.job_id) if opts.fail != "timeout" else None
        self.store.save(record)
        if fd is not None:
            self._inspected[record.job_id] = found
            self._start(record, fd)
        return JobHandle(
            provider=self.name,
            job_id=record.job_id,
            model=request.model,
            client_key=request.client_key,
            submitted_at=now,
            data={"work_dir": str(self.root)},
        )

    def _start(self, record: JobRecord, fd: int | None = None) -> None:
        fd = fd if fd is not None else self.store.acquire(record.job_id)
        if fd is None:  # another process already runs it
            return
        self._locks[record.job_id] = fd
        self._tasks[record.job_id] = asyncio.get_running_loop().create_task(
            self._run(record), name=f"kling-mock-{record.job_id}"
        )

    async def _run(self, record: JobRecord) -> None:
        job_id = record.job_id
        try:
            await self._queue_wait(record)
            record.state, record.started_at, record.progress = "running", self.ctx.clock(), 0.0
            self.store.save(record, durable=False)  # the queued and the final records are the durable ones
            failure = FAILURES.get(record.fail or "")
            if failure is not None and failure.job_error is not None:
                self._finish(record, "failed", error=unstructure(failure.job_error))
                return
            result = await self._render(record)
            self._finish(record, "succeeded", result=unstructure(result))
        except _CancelRequested:
            self._finish(record, "cancelled")
        except KlingError as exc:  # a render that fails is a failed job, not a crashed client
            error = JobError(message=exc.message, code=type(exc).__name__, retryable=False, kind="job_failed")
            self._finish(record, "failed", error=unstructure(error))
        except Exception as exc:  # e.g. a full disk: still a recorded outcome, never a silent hang
            error = JobError(message=f"{type(exc).__name__}: {exc}", code="internal", retryable=True, kind="provider")
            self._finish(record, "failed", error=unstructure(error))
        finally:
            fd = self._locks.pop(job_id, None)
            if fd is not None:
                self.store.release(fd)

    async def _queue_wait(self, record: JobRecord) -> None:
        remaining = record.latency - max(0.0, self.ctx.clock() - record.submitted_at)
        while remaining > 0:
            step = min(_POLL_STEP, remaining)
            await self.ctx.sleep(step)
            remaining -= step
            if self.store.cancel_requested(record.job_id):
                raise _CancelRequested
        if self.store.cancel_requested(record.job_id):
            raise _CancelRequested

    def _finish(self, record: JobRecord, state: str, **fields: Any) -> None:
        try:
            current = self.store.load(record.job_id)
        except ProviderError:  # a damaged record: ours, written next, replaces it
            current = None
        if current is not None and current.state == "cancelled":
            return  # cancelled in the meantime: the cancel wins
        record.state, record.completed_at = state, self.ctx.clock()
        for key, value in fields.items():
            setattr(record, key, value)
        if state == "succeeded":
            record.progress = 100.0
        self.store.save(record)

    async def _render(self, record: JobRecord) -> EditResult:
        request: EditRequest = structure(record.request, EditRequest)
        # Probed at submit in this process; a job picked up from another process probes again.
        found = self._inspected.pop(record.job_id, None) or await self._inspect(request)
        plan = render.plan(found.request, found.video, list(found.images), list(found.frontals))
        out = self.store.dir(record.job_id) / f"kling-mock-{record.job_id[5:17]}.mp4"
        # We hold the render lock: a temporary render here is from a renderer that died.
        self.store.clear_partial(record.job_id, out.name)
        total = max(plan.duration, 1e-6)
        last = [0.0]

        def on_progress(seconds: float) -> None:
            if self.store.cancel_requested(record.job_id):
                raise _CancelRequested
            pct = round(min(99.0, 100.0 * seconds / total), 1)
            if pct - last[0] >= 5.0:  # a record write per 5 % is plenty for pollers
                last[0] = pct
                record.progress = pct
                self.store.save(record, durable=False)

        await run_ffmpeg(
            self.ffmpeg,
            render.inputs(plan, found.video),
            render.output_args(plan),
            out,
            timeout=self.ctx.media.ffmpeg_timeout,
            on_progress=on_progress,
            # No fsync: the client's copy to the output is the durable one. A power cut before
            # that copy may leave this file unplayable, which the copy's verification reports.
            durable=False,
        )
        rendered = probe_video(out, "output", decode=False)
        report = plan.report()
        report["output"].update(duration=rendered.duration, size_bytes=rendered.size_bytes)
        report["model"], report["edit_mode"] = request.model, request.edit_mode
        return EditResult(
            video=OutputVideo(
                url=out.resolve().as_uri(),
                content_type="video/mp4",
                file_name=out.name,
                file_size=rendered.size_bytes,
            ),
            job_id=record.job_id,
            provider=self.name,
            model=request.model,
            timings=Timings(
                submitted_at=record.submitted_at, started_at=record.started_at, completed_at=self.ctx.clock()
            ),
            report=report,
        )

    # -- status ----------------------------------------------------------------------
    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        check_job_id(job_id)
        record = self.store.load(job_id)
        return JobHandle(
            provider=self.name,
            job_id=job_id,
            model=model or (record.model if record else None),
            client_key=record.client_key if record else None,
            submitted_at=record.submitted_at if record else None,
            data={"work_dir": str(self.root)},
        )

    def _record(self, handle: JobHandle) -> JobRecord:
        record = self.store.load(handle.job_id)
        if record is None:
            raise ProviderError(
                f"no such job in {self.store.root}",
                provider=self.name,
                status_code=404,
                code="job_not_found",
                job_id=handle.job_id,
            )
        return record

    async def status(self, handle: JobHandle) -> JobStatus:
        """Report only: a job whose renderer is gone shows as running with a note saying so."""
        record = self._record(handle)
        if self._orphaned(record):
            return Running(job_id=record.job_id, provider=self.name, progress=record.progress or 0.0,
                           logs=(_orphan_note(record),))  # type: ignore[arg-type]  # attrs converter
        return self._to_status(record)

    async def follow(self, handle: JobHandle) -> JobStatus:
        """A waiting caller's poll: a job left behind by an ended process is rendered here."""
        if self._orphaned(self._record(handle)):
            # Left behind by a process that ended: render it here (deterministic, so safe).
            self._start(self._record(handle))
        task = self._tasks.get(handle.job_id)
        if task is not None and not task.done():
            # At most one short wait per poll, adopted render or not: the caller's deadline and
            # progress are checked between polls. The render goes on; it is never cancelled here.
            await asyncio.wait({task}, timeout=_FOLLOW_WAIT)
        return self._to_status(self._record(handle))

    def _orphaned(self, record: JobRecord) -> bool:
        """Unfinished, past its queue time, and no process (this one or another) renders it."""
        still_queued = self.ctx.clock() - record.submitted_at < record.latency
        return (not record.terminal and record.fail != "timeout" and not still_queued
                and not self._live(record.job_id))

    def _live(self, job_id: str) -> bool:
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            return True
        return self.store.is_running_elsewhere(job_id)

    def _to_status(self, record: JobRecord) -> JobStatus:
        job_id, name = record.job_id, self.name
        if record.state == "succeeded" and record.result is not None:
            return Succeeded(job_id=job_id, provider=name, result=structure(record.result, EditResult))
        if record.state == "failed" and record.error is not None:
            return Failed(job_id=job_id, provider=name, error=structure(record.error, JobError))
        if record.state == "cancelled":
            return Cancelled(job_id=job_id, provider=name)
        if record.state == "queued" and (
            record.fail != "timeout" or self.ctx.clock() - record.submitted_at < record.latency
        ):
            return Queued(job_id=job_id, provider=name, position=0)
        return Running(job_id=job_id, provider=name, progress=record.progress or 0.0)

    # -- cancel ----------------------------------------------------------------------
    async def cancel(self, handle: JobHandle) -> bool:
        record = self._record(handle)
        if record.terminal:
            return False
        self.store.request_cancel(record.job_id)
        task = self._tasks.get(record.job_id)
        if task is not None and not task.done():
            task.cancel()  # kills the ffmpeg process group
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._mark_cancelled(record.job_id)
            return True
        if self.store.is_running_elsewhere(record.job_id):
            # The owning process sees the marker at its next progress report.
            waited = 0.0
            while waited < _CANCEL_WAIT:
                await asyncio.sleep(_POLL_STEP)
                waited += _POLL_STEP
                current = self._record(handle)
                if current.terminal:
                    return current.state == "cancelled"
            return False
        self._mark_cancelled(record.job_id)
        return True

    def _mark_cancelled(self, job_id: str) -> None:
        record = self.store.load(job_id)
        if record is not None and not record.terminal:
            record.state, record.completed_at = "cancelled", self.ctx.clock()
            self.store.save(record)

    async def aclose(self) -> None:
        """Jobs keep running until the event loop ends; nothing else to release."""


def _media_key(request: EditRequest) -> tuple[Any, ...] | None:
    """The model and every media file's path, modification time and size; None when a
    reference is not a local file (a URL is localized, and probed, first)."""
    stamps: list[tuple[str, str, int, int]] = []
    for field, ref in request.media():
        path = local_path(ref)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamps.append((field, ref, st.st_mtime_ns, st.st_size))
    return (request.model, tuple(stamps))


def _orphan_note(record: JobRecord) -> str:
    how = (f"`kling jobs resume {record.client_key}` or re-run the edit" if record.client_key
           else f"`kling result mock {record.job_id} -o OUT.mp4`")
    return (f"the renderer of job {record.job_id} is not alive (the process that submitted it ended); "
            f"nothing renders it until a waiting command picks it up: continue it with {how}")


def output_path(result: EditResult) -> Path:
    """The local file a mock result's ``file://`` URL names."""
    path = local_path(result.video.url)
    assert path is not None
    return path
