"""Following a submitted job: poll on a schedule (woken early by a push) to a deadline, then save the result atomically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

import attrs

from kling_core.backoff import backoff_delays
from kling_core.client.base import ClientBase, PathArg, StatusCallback
from kling_core.client.reword import reword
from kling_core.client.schedule import PollSchedule
from kling_core.client.timeouts import check_timeout
from kling_core.contract.checks import local_path
from kling_core.contract.models import EditResult
from kling_core.contract.status import Cancelled, Failed, JobStatus, Running, Succeeded
from kling_core.errors import JobCancelledError, JobTimeoutError, KlingError, failure_error, seconds_text
from kling_core.joblog import JobRecord
from kling_core.joblog.hints import resume_command
from kling_core.outputs import check_output, media_refs
from kling_core.provider import JobHandle, Provider
from kling_core.serialization import unstructure

log = logging.getLogger(__name__)
CANCEL_WAIT = 15.0
# Seconds after the status stream named a final state during which polls stay close, in case
# the status GET has not caught up with the stream yet.
ENDED_CLOSE_POLLS = 30.0
# Seconds a poll that falls due at (or just before) the deadline may still take to answer; a
# shorter timeout is its own bound, so ``timeout=0.5`` ends a hung status request after 0.5 s.
FINAL_POLL_GRACE = 2.0


class FollowMixin(ClientBase):
    """``wait`` and ``save``: a job handle to a saved result."""

    async def wait(self, handle: JobHandle, *, on_status: StatusCallback | None = None,
                   timeout: float | None = None) -> EditResult:
        """Poll until the job ends; raise the canonical error for failure or a passed deadline.

        Polls follow :class:`~kling_core.client.schedule.PollSchedule`: the backoff, with close
        polls around the host's typical job duration where it is known. Where the host offers
        a status stream (``[providers.NAME.poll] stream``) it is read beside a sparse safety
        poll, and an event naming the end wakes the wait at once; :meth:`wake` does the same
        for a webhook. Either way the outcome comes from the provider's own status and result.

        ``timeout`` (seconds) shortens the provider's poll deadline for this wait. The deadline
        bounds each status poll too (one due at the deadline gets up to ``FINAL_POLL_GRACE``):
        a host slow to answer is abandoned, the job is not. When it passes, the job is cancelled
        only if the provider's ``cancel_on_timeout`` is set and the host can cancel; otherwise
        the error names the command that resumes it.
        """
        timeout = check_timeout(timeout)
        prov = self.provider(handle.provider)
        poll = prov.poll
        schedule = PollSchedule.for_job(poll, prov.capabilities, handle.model)
        delays = backoff_delays(poll, self._rng)
        started = self._clock()
        # The schedule counts from the submit (a resumed job's too); a handle from elsewhere
        # whose time is missing or ahead of this clock counts from now.
        submitted = handle.submitted_at if handle.submitted_at is not None and handle.submitted_at <= started \
            else started
        limit = min(poll.deadline, timeout) if timeout is not None else poll.deadline
        deadline = started + limit
        seen = ""

        def report(status: JobStatus) -> None:
            nonlocal seen
            log.debug("%s job %s: %s", handle.provider, handle.job_id, status.state)
            if on_status is not None:
                on_status(status)
            if prov.ctx.events is not None:
                prov.ctx.events(handle.provider, handle.job_id, status.state, status)
            if isinstance(status, Running) and seen != "running":
                self._record(handle, "running")
            seen = status.state

        waiter = _Waiter(self._sleep)
        hooked: bool | None = None  # was the job submitted with a webhook_url (looked up once, when needed)
        stream: asyncio.Task[None] | None = None
        self._register(handle, waiter)
        try:
            while True:
                # A status request the host is slow to answer (its request timeout times its
                # retries) may not outlast the deadline. Real seconds: the poll's own waiting is
                # real I/O, while the injected clock and sleep only space the polls.
                bound = max(deadline - self._clock(), min(FINAL_POLL_GRACE, limit))
                status = await _within(prov.follow(handle), bound)  # may do work a bare status must not
                if status is None:
                    log.debug("%s job %s: no status answer within %.1f s", handle.provider, handle.job_id, bound)
                    raise await self._timed_out(prov, handle, limit)
                report(status)
                if isinstance(status, Succeeded):
                    res = status.result
                    self._record(handle, "succeeded", result=unstructure(res),
                                 cost=unstructure(res.cost) if res.cost is not None else None, error=None)
                    return res
                if isinstance(status, Failed):
                    self._record(handle, "failed", error=status.error.message)
                    raise _failed_error(status)
                if isinstance(status, Cancelled):
                    self._record(handle, "cancelled")
                    raise JobCancelledError(provider=handle.provider, job_id=handle.job_id)
                if stream is None and poll.stream and _stream_shape(prov) is not None:
                    stream = asyncio.ensure_future(self._read_stream(prov, handle, waiter, report))
                now = self._clock()
                receiver = self._push_receiver
                if receiver and hooked is None:
                    hooked = _has_webhook(self._job_record(handle))
                pushed = (receiver and bool(hooked)) or waiter.streaming
                delay = schedule.delay(now - submitted, next(delays), self._rng.random(), pushed=pushed)
                if waiter.ended_at is not None and now - waiter.ended_at < ENDED_CLOSE_POLLS:
                    delay = min(delay, poll.window_every)  # the stream said it ended: confirm it soon
                if pushed:
                    delay = min(delay, max(0.0, deadline - now))  # a long safety gap never ends the wait early
                if now + delay > deadline or (pushed and now >= deadline):
                    # The limit, not the time so far: the wait stops early when the next poll would pass it.
                    raise await self._timed_out(prov, handle, limit)
                await waiter.sleep(delay)
        finally:
            self._unregister(handle, waiter)
            held = self._host_limits.get(handle.provider)
            if held is not None:  # its slot on the host is free (or no longer ours to count)
                held.ended((handle.provider, handle.job_id))
            if stream is not None and not stream.done():
                stream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stream

    async def _read_stream(self, prov: Provider, handle: JobHandle, waiter: _Waiter,
                           report: Callable[[JobStatus], None]) -> None:
        """Follow the host's status stream while the wait lasts; wake the wait when it ends or is lost."""
        from kling_core.http.base import HttpProvider
        from kling_core.http.stream import watch

        if not isinstance(prov, HttpProvider):
            return
        try:
            why = await watch(prov, handle, on_status=report, sleep=self._sleep, on_live=waiter.set_streaming)
        except Exception:  # a stream failure is never a job failure
            log.debug("status stream failed", exc_info=True)
            why = "it failed"
        finally:
            waiter.streaming = False
        if why is None:
            waiter.ended_at = self._clock()
        else:
            log.info("%s job %s: polling without the status stream (%s)", handle.provider, handle.job_id, why)
        waiter.wake()  # confirm the end now, or poll on the schedule without the stream

    # -- push channels ------------------------------------------------------------------------
    def wake(self, provider: str, job_id: str) -> bool:
        """Cut the sleep of every wait for this job short, so it asks the host for the status now.

        For a webhook receiver: a delivery is a hint, the wait's own status GET is the proof.
        A plain function, safe to call from any thread (a receiver's) or the client's loop.
        True when a wait for the job was found.
        """
        with self._waiters_lock:
            waiters = list(self._waiters.get((provider, job_id), ()))
        for waiter in waiters:
            waiter.wake_threadsafe()
        return bool(waiters)

    def push_receiver(self, active: bool = True) -> None:
        """Say an in-process webhook receiver calls :meth:`wake` for jobs submitted with its
        ``webhook_url``: waits for such jobs (known from the job log) keep the sparse safety
        schedule (``push_every``) instead of close polls around the typical duration.
        ``active=False`` when the receiver stops: those waits poll at once and go on without it."""
        was = self._push_receiver
        self.__dict__["_kling_push_receiver"] = active
        if was and not active:  # waits spaced for the receiver poll now, on their own schedule after
            with self._waiters_lock:
                waiters = [w for found in self._waiters.values() for w in found]
            for waiter in waiters:
                waiter.wake_threadsafe()

    @property
    def _push_receiver(self) -> bool:
        return bool(self.__dict__.get("_kling_push_receiver", False))

    @property
    def _waiters(self) -> dict[tuple[str, str], set[_Waiter]]:
        found: dict[tuple[str, str], set[_Waiter]] | None = self.__dict__.get("_kling_waiters")
        if found is None:
            found = self.__dict__.setdefault("_kling_waiters", {})
        return found

    @property
    def _waiters_lock(self) -> threading.Lock:
        lock: threading.Lock | None = self.__dict__.get("_kling_waiters_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_kling_waiters_lock", threading.Lock())
        return lock

    def _register(self, handle: JobHandle, waiter: _Waiter) -> None:
        with self._waiters_lock:
            self._waiters.setdefault((handle.provider, handle.job_id), set()).add(waiter)

    def _unregister(self, handle: JobHandle, waiter: _Waiter) -> None:
        key = (handle.provider, handle.job_id)
        with self._waiters_lock:
            found = self._waiters.get(key)
            if found is not None:
                found.discard(waiter)
                if not found:
                    del self._waiters[key]

    def _job_record(self, handle: JobHandle) -> JobRecord | None:
        return self.journal.find_job(handle.provider, handle.job_id) if self.journal is not None else None

    async def _timed_out(self, prov: Provider, handle: JobHandle, waited: float) -> JobTimeoutError:
        exc = JobTimeoutError(provider=handle.provider, job_id=handle.job_id, waited=waited)
        job = f"{handle.provider}: job {handle.job_id}" + (f" (client key {handle.client_key})" if handle.client_key else "")
        if prov.ctx.settings.cancel_on_timeout and prov.capabilities.can_cancel:
            try:
                accepted = await asyncio.wait_for(self.cancel(handle), timeout=CANCEL_WAIT)
            except Exception as err:  # best effort; what matters is that the error says so
                log.debug("cancel on timeout failed", exc_info=True)
                accepted, why = False, f": {err}"
            else:
                why = "" if accepted else ": the host refused"
            if accepted:
                return reword(exc, f"{job} did not finish within {seconds_text(waited)} and was cancelled (cancel_on_timeout)")
            note = f"; cancelling it failed{why}"
        else:
            note = "; it was not cancelled"
        if handle.client_key and self.journal is not None and self.journal.get(handle.client_key) is not None:
            again = f"wait for it and save it with `{resume_command(handle.client_key)}`"
            self.journal.transition(handle.client_key, error=f"not finished after waiting {seconds_text(waited)}")
        else:
            again = f"pick it up with `kling result {handle.provider} {handle.job_id} -o OUT.mp4`"
        return reword(exc, f"{job} did not finish within {seconds_text(waited)}{note}: {again} "
                           f"(or check it with `kling status {handle.provider} {handle.job_id}`)")

    async def save(self, result: EditResult, dest: PathArg) -> EditResult:
        """Write the result video to ``dest`` atomically (verified first); return it with its path.

        The job is marked ``saved`` in the log only after the file took its name.
        """
        from kling_core.http.download import download_result

        record = self.journal.find_job(result.provider, result.job_id) if self.journal is not None else None
        # A directory or the job's own input is a ValidationError naming ``output``, never an
        # OSError after the download (the result stays in the log, unsaved).
        dest = check_output(dest, inputs=media_refs(record.request if record is not None else None))
        dest.parent.mkdir(parents=True, exist_ok=True)
        prov = self.provider(result.provider)
        await download_result(result, dest, prov.ctx, expect_duration=_expected_duration(record),
                              client_key=record.client_key if record is not None else None)
        log.info("saved %s job %s to %s", result.provider, result.job_id, dest)
        video = attrs.evolve(result.video, path=str(dest), file_size=dest.stat().st_size)
        saved = attrs.evolve(result, video=video)
        if record is not None and self.journal is not None:
            self.journal.transition(record.client_key, "saved", detail=str(dest), output=str(dest),
                                    result=unstructure(saved), error=None)
        return saved

    async def _collect(self, handle: JobHandle, dest: PathArg | None, *, on_status: StatusCallback | None,
                       timeout: float | None) -> EditResult:
        """:meth:`wait` for the job, then :meth:`save` its result to ``dest`` when there is one."""
        result = await self.wait(handle, on_status=on_status, timeout=timeout)
        return await self.save(result, dest) if dest is not None else result


class _Waiter:
    """One wait's sleep between polls, which a push (the status stream, :meth:`FollowMixin.wake`)
    cuts short."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._sleep = sleep
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self.streaming = False  # a connection of the host's status stream is being read
        self.ended_at: float | None = None  # when the stream named a final state

    def wake(self) -> None:
        self._woken.set()

    def set_streaming(self, live: bool) -> None:
        """The status stream is being read (or no longer): a lost one wakes the wait, whose
        sleep was spaced for a live push channel, to poll now and go on without it."""
        was, self.streaming = self.streaming, live
        if was and not live:
            self._woken.set()

    def wake_threadsafe(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._woken.set()
        else:
            self._loop.call_soon_threadsafe(self._woken.set)

    async def sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds (the client's sleep) or until woken; True when woken."""
        if not self._woken.is_set():
            sleeper = asyncio.ensure_future(self._sleep(delay))
            woken = asyncio.ensure_future(self._woken.wait())
            try:
                await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, woken):
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        was_woken = self._woken.is_set()
        self._woken.clear()
        return was_woken


async def _within(poll: Awaitable[JobStatus], seconds: float) -> JobStatus | None:
    """The poll's status, or None when it has not answered within ``seconds``.

    The unanswered poll is cancelled: it is a status look-up (the mock's adopted render is a task
    of its own that the poll only waits on), never a submit.
    """
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await poll
    except TimeoutError:
        if scope.expired():
            return None
        raise  # the poll's own TimeoutError, not the deadline


def _stream_shape(prov: Provider) -> object | None:
    spec = getattr(prov, "spec", None)
    return getattr(spec, "stream", None)


def _has_webhook(record: JobRecord | None) -> bool:
    doc = ((record.request or {}).get("request") if record is not None else None) or {}
    return bool(doc.get("webhook_url"))


def _failed_error(status: Failed) -> KlingError:
    err = status.error
    return failure_error(status.provider, status.job_id, err.message, kind=err.kind, code=err.code,
                         retryable=err.retryable)


def _expected_duration(record: JobRecord | None) -> float | None:
    """The input's duration where the output should follow it (a local input, no duration asked)."""
    doc = ((record.request or {}).get("request") if record is not None else None) or {}
    if not doc or doc.get("duration") is not None or doc.get("edit_mode", "edit") != "edit":
        return None
    path = local_path(str(doc.get("video") or ""))
    if path is None or not path.is_file():
        return None
    from kling_core.media.probe import probe_video

    with contextlib.suppress(KlingError, OSError):
        return probe_video(path, decode=False).duration
    return None
