"""Following a submitted job: poll with backoff to a deadline, then save the result atomically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import attrs

from kling_core.client.base import ClientBase, PathArg, StatusCallback
from kling_core.client.reword import reword
from kling_core.client.timeouts import check_timeout
from kling_core.contract.checks import local_path
from kling_core.contract.models import EditResult
from kling_core.contract.status import Cancelled, Failed, Running, Succeeded
from kling_core.errors import JobCancelledError, JobTimeoutError, KlingError, failure_error
from kling_core.http.retry import backoff_delays
from kling_core.joblog import JobRecord
from kling_core.joblog.hints import resume_command
from kling_core.provider import JobHandle, Provider
from kling_core.serialization import unstructure

log = logging.getLogger(__name__)
CANCEL_WAIT = 15.0


class FollowMixin(ClientBase):
    """``wait`` and ``save``: a job handle to a saved result."""

    async def wait(self, handle: JobHandle, *, on_status: StatusCallback | None = None,
                   timeout: float | None = None) -> EditResult:
        """Poll until the job ends; raise the canonical error for failure or a passed deadline.

        ``timeout`` (seconds) shortens the provider's poll deadline for this wait. When it
        passes, the job is cancelled only if the provider's ``cancel_on_timeout`` is set and
        the host can cancel; otherwise the error names the command that resumes it.
        """
        timeout = check_timeout(timeout)
        prov = self.provider(handle.provider)
        poll = prov.poll
        delays = backoff_delays(poll, self._rng)
        started = self._clock()
        limit = min(poll.deadline, timeout) if timeout is not None else poll.deadline
        deadline = started + limit
        seen = ""
        while True:
            status = await prov.follow(handle)  # may do work a bare status must not
            log.debug("%s job %s: %s", handle.provider, handle.job_id, status.state)
            if on_status is not None:
                on_status(status)
            if prov.ctx.events is not None:
                prov.ctx.events(handle.provider, handle.job_id, status.state, status)
            if isinstance(status, Running) and seen != "running":
                self._record(handle, "running")
            seen = status.state
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
            delay = next(delays)
            if self._clock() + delay > deadline:
                raise await self._timed_out(prov, handle, self._clock() - started)
            await self._sleep(delay)

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
                return reword(exc, f"{job} did not finish within {waited:.0f}s and was cancelled (cancel_on_timeout)")
            note = f"; cancelling it failed{why}"
        else:
            note = "; it was not cancelled"
        if handle.client_key and self.journal is not None and self.journal.get(handle.client_key) is not None:
            again = f"wait for it and save it with `{resume_command(handle.client_key)}`"
            self.journal.transition(handle.client_key, error=f"not finished after waiting {waited:.0f}s")
        else:
            again = f"pick it up with `kling result {handle.provider} {handle.job_id} -o OUT.mp4`"
        return reword(exc, f"{job} did not finish within {waited:.0f}s{note}: {again} "
                           f"(or check it with `kling status {handle.provider} {handle.job_id}`)")

    async def save(self, result: EditResult, dest: PathArg) -> EditResult:
        """Write the result video to ``dest`` atomically (verified first); return it with its path.

        The job is marked ``saved`` in the log only after the file took its name.
        """
        from kling_core.http.download import download_result

        dest = Path(dest).expanduser().resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        prov = self.provider(result.provider)
        record = self.journal.find_job(result.provider, result.job_id) if self.journal is not None else None
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
