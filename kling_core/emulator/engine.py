"""The job engine every emulated host shares: a job store, a schedule, renders and outcomes.

A job is queued for ``queue_seconds``, then runs (inputs fetched, probed, checked, rendered)
for at least ``run_seconds``, then is completed with an output file or a failure: input
problems (each with a machine type and the canonical field), a scripted failure, or an
internal render error. Cancelling stops it (the ffmpeg child included). Hosts only translate
between their wire format and these jobs.

Jobs live in memory; with a state folder each change is also written to
``<state>/jobs/<id>.json`` and unfinished jobs are taken up again on the next start (renders
are deterministic, so starting one over is safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from kling_core_plugins.mock.capabilities import CAPABILITIES

from kling_core.emulator.failures import ENDS_QUEUED
from kling_core.emulator.media import MediaResolver
from kling_core.emulator.pipeline import InputProblems, check_refs, prepare
from kling_core.emulator.render import Renderer
from kling_core.emulator.settings import EmulatorSettings
from kling_core.emulator.storage import Storage
from kling_core.files import write_text_atomic
from kling_core.media.locate import find_ffmpeg

# Scripted failures that end a job that was accepted (the others refuse the submit, or hang).
JOB_FAILURES = ("content_policy", "completed_with_error")


@attrs.define
class Job:
    id: str
    host: str
    app: str  # the host's name for the model family (fal: owner/app); status URLs use it
    endpoint: str  # the host's model id as submitted
    intake: dict[str, Any]  # canonical: prompt, model, quality, edit_mode, keep_audio, video, images, elements
    submitted_at: float
    fail: str | None = None
    webhook_url: str | None = None
    user: str = ""
    origin: str = ""  # the host's base URL the job came in through (for URLs in webhooks)
    state: str = "queued"  # queued | running | completed | cancelled
    started_at: float | None = None
    completed_at: float | None = None
    progress: float = 0.0
    output: dict[str, Any] | None = None  # key, name, size, duration of the stored result
    problems: list[dict[str, Any]] | None = None  # InputProblem documents
    error: str | None = None  # a scripted job failure, or "internal"
    error_message: str | None = None
    logs: list[dict[str, Any]] = attrs.field(factory=list)
    webhook: str | None = None  # None | pending | delivered | failed | not_sent

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "cancelled")

    @property
    def succeeded(self) -> bool:
        return self.state == "completed" and self.output is not None

    def problems_text(self, field: Callable[[str], str] = str) -> str:
        """The input problems as one message: ``<field>: <message>`` joined by ``; ``, each field
        named as the host names it (``field`` maps the canonical name)."""
        return "; ".join(f"{field(p['field'])}: {p['message']}" for p in self.problems or ())


FinishHook = Callable[[Job], Awaitable[None]]


class Engine:
    def __init__(self, settings: EmulatorSettings, root: Path, *, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.root = root
        self.log = log
        self.storage = Storage(root / "storage", settings.max_upload_bytes)
        self.resolver = MediaResolver(self.storage, media_root=settings.media_root, work=root / "downloads",
                                      timeout=settings.download_timeout)
        self._ffmpeg: str | None = None
        self.renderer = Renderer(settings.render, self.storage, ffmpeg=self.ffmpeg, timeout=settings.ffmpeg_timeout,
                                 max_parallel=settings.max_renders)
        self.jobs: dict[str, Job] = {}
        self._queued: dict[str, None] = {}  # ids of queued jobs, in submit order
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._hooks: dict[str, FinishHook] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.jobs_dir = settings.state_dir / "jobs" if settings.state_dir else None

    def ffmpeg(self) -> str:
        if self._ffmpeg is None:
            self._ffmpeg = find_ffmpeg()
        return self._ffmpeg

    def on_finish(self, host: str, hook: FinishHook) -> None:
        self._hooks[host] = hook

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self.jobs_dir is None:
            return
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        known = {a.name for a in attrs.fields(Job)}
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                doc = json.loads(path.read_text("utf-8"))
                job = Job(**{k: v for k, v in doc.items() if k in known})
            except (OSError, ValueError, TypeError):
                self.log(f"state: skipped unreadable job file {path.name}")
                continue
            self.jobs[job.id] = job
            self._done[job.id] = asyncio.Event()
            if job.finished:
                self._done[job.id].set()
            else:
                if job.state == "queued":
                    self._queued[job.id] = None
                self._launch(job)
        if self.jobs:
            self.log(f"state: {len(self.jobs)} jobs loaded from {self.jobs_dir}")

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # -- jobs ------------------------------------------------------------------------------
    def new_id(self) -> str:
        return str(uuid.uuid4())

    def submit(self, job: Job) -> Job:
        self.jobs[job.id] = job
        self._queued[job.id] = None
        self._done[job.id] = asyncio.Event()
        self.add_log(job, "Request queued")
        self._save(job)
        self._launch(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def queue_position(self, job: Job) -> int:
        if job.state != "queued":
            return 0
        position = 0
        for other in self._queued:
            if other == job.id:
                break
            if self.jobs[other].host == job.host:
                position += 1
        return position

    def cancel(self, job: Job) -> str:
        """``cancelled`` or ``already_finished``."""
        if job.finished:
            return "already_finished"
        task = self._tasks.pop(job.id, None)
        if task is not None:
            task.cancel()
        self._queued.pop(job.id, None)
        job.state, job.completed_at = "cancelled", time.time()
        self.add_log(job, "Request cancelled", level="WARN")
        self._finished(job)
        return "cancelled"

    async def wait(self, job: Job) -> Job:
        await self._done[job.id].wait()
        return job

    def add_log(self, job: Job, message: str, level: str = "INFO") -> None:
        job.logs.append({"message": message, "level": level, "timestamp": time.time()})

    # -- running -----------------------------------------------------------------------------
    def _launch(self, job: Job) -> None:
        self._tasks[job.id] = asyncio.get_running_loop().create_task(self._run(job), name=f"emulator-{job.id}")

    async def _run(self, job: Job) -> None:
        s = self.settings
        if job.state == "queued":
            wait = job.submitted_at + s.queue_seconds - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._queued.pop(job.id, None)
            if job.fail in ENDS_QUEUED:  # ended by the host before it ran (Replicate's `aborted`)
                job.error, job.state, job.completed_at = job.fail, "completed", time.time()
                self.add_log(job, f"Ended before it ran ({job.fail})", level="WARN")
                self._tasks.pop(job.id, None)
                self._finished(job)
                return
            job.state, job.started_at = "running", time.time()
            self.add_log(job, "Generating video")
            self._save(job)
        started = job.started_at or time.time()
        if job.fail == "timeout":
            await asyncio.Event().wait()  # runs until cancelled, as a hung host job would
        elif job.fail in JOB_FAILURES:
            job.error = job.fail
        elif job.problems is not None:
            pass  # refused by the host's own checks at submit, failed at run time (as Segmind does)
        else:
            await self._produce(job)
        remaining = started + s.run_seconds - time.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        job.state, job.completed_at, job.progress = "completed", time.time(), 100.0
        self.add_log(job, "Done" if job.succeeded else "Failed", level="INFO" if job.succeeded else "ERROR")
        self._tasks.pop(job.id, None)
        self._finished(job)

    async def _produce(self, job: Job) -> None:
        model = CAPABILITIES.model(job.intake["model"]) or CAPABILITIES.models[0]
        downloads: list[Path] = []
        try:
            if self.settings.render == "sample":
                check_refs(job.intake, self.resolver)
                rendered = await self.renderer.sample()
            else:
                prepared = await prepare(job.intake, self.resolver, video_limits=model.video,
                                         image_limits=model.image, job_id=job.id)
                downloads = [p for p in prepared.files if p.parent == self.resolver.work]
                self.add_log(job, "Rendering")
                last = [0.0]

                def progress(pct: float) -> None:
                    job.progress = pct
                    if pct - last[0] >= 25.0:
                        last[0] = pct
                        self.add_log(job, f"Rendering: {pct:.0f}%")

                rendered = await self.renderer.render(prepared.request, prepared.video, prepared.images,
                                                      prepared.frontals, files=prepared.files, on_progress=progress)
            job.output = {"key": rendered.key, "name": rendered.name, "size": rendered.size,
                          "duration": rendered.duration}
        except InputProblems as exc:
            job.problems = [attrs.asdict(p) for p in exc.problems]
            self.add_log(job, f"Input refused: {exc}", level="ERROR")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a render that fails is a failed job, never a crashed emulator
            job.error, job.error_message = "internal", f"{type(exc).__name__}: {exc}"[:500]
            self.add_log(job, f"Render failed: {job.error_message}", level="ERROR")
        finally:
            for path in downloads:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _finished(self, job: Job) -> None:
        self._save(job)
        self._done[job.id].set()
        hook = self._hooks.get(job.host)
        if hook is not None:
            task = asyncio.get_running_loop().create_task(self._hook(hook, job))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _hook(self, hook: FinishHook, job: Job) -> None:
        try:
            await hook(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log(f"{job.host}: finishing job {job.id} failed: {type(exc).__name__}: {exc}")
        self._save(job)

    def _save(self, job: Job) -> None:
        if self.jobs_dir is not None:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.jobs_dir / f"{job.id}.json", json.dumps(attrs.asdict(job), sort_keys=True))
