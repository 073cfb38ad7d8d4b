"""Running a checked plan: a bounded pool of workers, results yielded as they finish.

``concurrency`` workers take the plan's lines one at a time from one shared iterator, so the
state held is that of at most ``concurrency`` jobs, whatever the batch's size; finished lines
go through a queue of the same bound to the caller. Each job also takes a slot of its
provider (the first of a fallback list) from before its submit until its job has ended on the
host: the client's own per-provider bound, the one ``edit`` takes too
(``client.in_flight_limit(provider)``: the provider's ``max_in_flight`` setting, else the
host's documented limit). A job waiting for a slot is reported.

Every job goes through the client's single-job path (``start``, ``wait``, ``save``), so the
job log's rules hold per line: claimed before its submit, picked up instead of resubmitted.
When the run is cancelled (Ctrl-C) no new line is taken, a line still uploading or waiting its
turn is stopped at once, a submit already on the wire (its key claimed) is given
``SUBMIT_GRACE`` seconds to bring its job id into the log (a job it brings is reported with its
line, as one left running), and every job started stays in the job log: running the same batch
again picks them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import attrs

from kling_core.batches.plan import BatchPlan, PlannedLine
from kling_core.batches.results import BatchLineResult, LineAction, LineState, not_run, skipped
from kling_core.client.aio import AsyncEditClient
from kling_core.client.submit import Started
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus
from kling_core.errors import JobCancelledError, KlingError, ValidationError
from kling_core.joblog.store import owner_tag

DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 1000
SUBMIT_GRACE = 10.0  # seconds a submit in flight may finish after the batch was cancelled


def check_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValidationError.single("concurrency", f"{value!r} must be a whole number from 1 to {MAX_CONCURRENCY}")
    return value


class BatchEvents:
    """What a run reports besides its results (the CLI's per-job lines); every method optional."""

    def waiting(self, line: PlannedLine, provider: str, limit: int) -> None:
        """``line`` waits for one of ``provider``'s ``limit`` slots."""

    def bound(self, line: PlannedLine, started: Started) -> None:
        """``line`` has its job: just submitted, or picked up (``started.resumed``)."""

    def status(self, line: PlannedLine, status: JobStatus) -> None:
        """Each status polled for ``line``'s job."""


async def run_plan(client: AsyncEditClient, plan: BatchPlan, *, concurrency: int = DEFAULT_CONCURRENCY,
                   fail_fast: bool = False, events: BatchEvents | None = None,
                   timeout: float | None = None) -> AsyncGenerator[BatchLineResult, None]:
    """Yield every line's result: skipped lines first, then each job as it finishes."""
    check_concurrency(concurrency)
    events = events or BatchEvents()
    for line in plan.lines:
        if line.action == "skip":
            yield skipped(line)
    todo = [line for line in plan.lines if line.action != "skip"]
    if not todo:
        return
    lines: Iterator[PlannedLine] = iter(todo)
    queue: asyncio.Queue[BatchLineResult | BaseException | None] = asyncio.Queue(maxsize=concurrency)
    stop = asyncio.Event()
    reported: set[int] = set()
    jobs: dict[int, Started] = {}  # lines with a job on a host, until they are reported
    # Results waiting for room in the queue: a --fail-fast cancel may end their worker there,
    # and the finished (maybe saved, paid) result must still be reported, not called not run.
    finished: dict[int, BatchLineResult] = {}

    async def worker() -> None:
        for line in lines:  # one shared iterator: each line is taken once
            if stop.is_set():
                return
            result = await run_line(client, line, events, timeout, jobs)
            finished[line.number] = result
            jobs.pop(line.number, None)
            await queue.put(result)
            finished.pop(line.number, None)
            if fail_fast and not result.ok:
                stop.set()

    workers = [asyncio.create_task(worker(), name=f"kling-batch-{i}") for i in range(min(concurrency, len(todo)))]

    async def close() -> None:
        outcome = await asyncio.gather(*workers, return_exceptions=True)
        failure = next((o for o in outcome if isinstance(o, BaseException)
                        and not isinstance(o, asyncio.CancelledError)), None)
        await queue.put(failure)

    closer = asyncio.create_task(close())
    stopping = False
    try:
        while True:
            if stop.is_set() and not stopping:
                # --fail-fast: stop waiting for the jobs in flight; they stay in the job log.
                stopping = True
                for task in workers:
                    task.cancel()
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            reported.add(item.line)
            yield item
        why = "not run: the batch stopped at a failed line (--fail-fast); run it again to resume"
        for line in todo:
            if line.number in reported:
                continue
            done = finished.get(line.number)
            yield done if done is not None else not_run(line, why, jobs.get(line.number))
    finally:
        for task in workers:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*workers, return_exceptions=True)
        closer.cancel()
        with contextlib.suppress(BaseException):
            await closer


async def run_line(client: AsyncEditClient, line: PlannedLine, events: BatchEvents, timeout: float | None,
                   jobs: dict[int, Started] | None = None) -> BatchLineResult:
    """One line through the single-job path; an expected error is this line's result, not the batch's."""
    begun = time.monotonic()
    action: LineAction = "not_started"
    job_id: str | None = None

    def bind(started: Started) -> None:
        if jobs is not None:
            jobs[line.number] = started
        events.bound(line, started)

    try:
        # The client's own bound on jobs in flight per provider, the one ``edit`` takes too.
        slots = client._slots(line.primary)
        if slots.held >= slots.size:
            events.waiting(line, line.primary, slots.size)
        async with slots.slot():
            started = await _start(client, line, bind)
            action = "picked_up" if started.resumed else "submitted"
            job_id = started.handle.job_id
            bind(started)
            result = await _follow(client, line, started, events, timeout)
        saved = await client.save(result, line.output)
    except KlingError as exc:
        state: LineState = "cancelled" if isinstance(exc, JobCancelledError) else "failed"
        return BatchLineResult(line=line.number, client_key=line.client_key, state=state, action=action,
                               provider=line.provider, output=str(line.output), job_id=job_id or getattr(exc, "job_id", None),
                               error=str(exc), error_type=type(exc).__name__, seconds=time.monotonic() - begun)
    return BatchLineResult(line=line.number, client_key=line.client_key, state="saved", action=action,
                           provider=saved.provider, output=str(saved.video.path or line.output), job_id=saved.job_id,
                           seconds=time.monotonic() - begun)


async def _start(client: AsyncEditClient, line: PlannedLine, bind: Callable[[Started], None]) -> Started:
    """Submit (or pick up) the line's job; a cancel waits a moment for a submit already sent, and
    ``bind``s the job it brings (the line is then reported with it, as a job left running)."""
    # The provider is passed as the line names it: a fallback list goes to the client unchanged.
    task = asyncio.ensure_future(client.start(as_logged(client, line), provider=line.provider, output=line.output))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if _submit_on_the_wire(client, line):
            # Let a submit on the wire bring its job id into the log, so a re-run picks it up.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, SUBMIT_GRACE)
        else:  # still uploading or waiting its turn: stop it before anything is submitted
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if task.done() and not task.cancelled() and task.exception() is None:
            bind(task.result())  # submitted and billed: the batch's results must name it
        raise


def _submit_on_the_wire(client: AsyncEditClient, line: PlannedLine) -> bool:
    """Whether the line's submit may be on its way: its key is claimed (``submitting``) by this
    process. Without a job log that cannot be told, so it is assumed."""
    if client.journal is None:
        return True
    record = client.journal.get(line.client_key)
    return record is not None and record.state == "submitting" and record.owner == owner_tag()


def as_logged(client: AsyncEditClient, line: PlannedLine) -> EditRequest:
    """The request to pick a line's job up with: a job keeps the webhook URL it was submitted with.

    The webhook is not part of a line's identity, so a re-run that gives the line another one (a
    receiver on another port) still finds its job; the host calls the URL it was given anyway, and
    the job log would otherwise refuse the line's key as used for a different request.
    """
    if line.action != "pickup" or client.journal is None:
        return line.request
    record = client.journal.get(line.client_key)
    doc = (record.request or {}).get("request") if record is not None else None
    if not isinstance(doc, dict) or doc.get("webhook_url") == line.request.webhook_url:
        return line.request
    return attrs.evolve(line.request, webhook_url=doc.get("webhook_url"))


async def _follow(client: AsyncEditClient, line: PlannedLine, started: Started, events: BatchEvents,
                  timeout: float | None) -> Any:
    """Wait for the line's job by polling. (Where results may come by webhook instead, this is the
    one place that would take them: the client's ``wake()`` hook ends a poll's sleep early.)"""
    return await client.wait(started.handle, on_status=lambda st: events.status(line, st), timeout=timeout)
