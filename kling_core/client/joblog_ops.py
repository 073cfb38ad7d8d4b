"""The job log through the client: list and show jobs, resume one, forget one."""

from __future__ import annotations

import time
from collections.abc import Iterable

import attrs

from kling_core.client.base import PathArg, StatusCallback
from kling_core.client.follow import FollowMixin
from kling_core.client.pickup import pickup
from kling_core.client.timeouts import check_timeout
from kling_core.contract.models import EditResult
from kling_core.errors import JobFailedError, ValidationError
from kling_core.joblog import UNFINISHED, JobLog, JobRecord, parse_age, parse_states
from kling_core.outputs import check_output, media_refs, release
from kling_core.provider import Provider


class JobLogMixin(FollowMixin):
    """``jobs``, ``job``, ``resume`` and ``forget``: what the ``kling jobs`` commands run."""

    def _log(self) -> JobLog:
        if self.journal is None:
            raise ValidationError.single("journal", "this client keeps no job log (use_journal=False)")
        return self.journal

    def jobs(
        self,
        *,
        state: str | Iterable[str] | None = None,
        provider: str | None = None,
        since: str | float | None = None,
        limit: int | None = 20,
    ) -> list[JobRecord]:
        """Logged jobs, newest first. ``state``: states or ``unfinished``/``finished``;
        ``since``: an age (``"2h"``, ``"1d"``, seconds); ``limit``: at most this many (0/None: all).
        """
        states = parse_states(state if state is None or isinstance(state, str) else tuple(state))
        age = parse_age(since, field="since") if since is not None else None
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError.single("limit", f"{limit!r} must be a whole number, 0 for all")
        journal = self._log()
        journal.settle_stale()
        return journal.list(states=states, provider=provider, since=None if age is None else time.time() - age,
                            limit=limit or None)

    def job(self, ref: str) -> JobRecord:
        """One logged job by client key, host job id, or a unique prefix of its key."""
        journal = self._log()
        journal.settle_stale()
        found = journal.find(ref)
        if not found:
            raise ValidationError.single("job", f"no job {ref!r} in the log ({journal.path}); `kling jobs` lists them")
        if len(found) > 1:
            keys = ", ".join(r.client_key for r in found[:5])
            raise ValidationError.single("job", f"{ref!r} names {len(found)} jobs ({keys}); give the client key")
        return found[0]

    async def resume(
        self,
        ref: str,
        *,
        output: PathArg | None = None,
        timeout: float | None = None,
        job_id: str | None = None,
        on_status: StatusCallback | None = None,
    ) -> EditResult:
        """Pick up a logged job (key or job id): wait for it and save it; never submits.

        ``output`` defaults to the path the job was started with (no save when it has none);
        either is checked first (a ValidationError naming ``output``, as for :meth:`edit`).
        ``job_id`` attaches the host's id to an uncertain job (found on the host's dashboard).
        """
        timeout = check_timeout(timeout)
        journal = self._log()
        record = self.job(ref)
        # Checked as the CLI checks -o, before the log is touched: a bad path is never stored.
        given = output if output is not None else record.output
        dest = check_output(given, inputs=media_refs(record.request)) if given is not None else None
        prov = self.provider(record.provider)
        if job_id is not None:
            record = self._attach(record, prov, job_id)
        if record.state == "failed" and record.handle is None:
            raise JobFailedError(record.error or "the submit was refused", provider=record.provider,
                                 job_id=record.job_id or record.client_key)
        handle = await pickup(journal, record, prov, None, None)
        if handle is None:
            raise ValidationError.single("job", f"{record.client_key}: the host has no such job (the submit never "
                                         "landed); run the original command again to submit it")
        if output is not None and dest is not None:
            switch_output(journal, record, str(dest))
        return await self._collect(handle, dest, on_status=on_status, timeout=timeout)

    def _attach(self, record: JobRecord, prov: Provider, job_id: str) -> JobRecord:
        if not job_id.strip():
            raise ValidationError.single("job_id", "must not be empty")
        if record.job_id is not None and record.job_id != job_id:
            raise ValidationError.single("job_id", f"job {record.client_key} already has job id {record.job_id}")
        handle = attrs.evolve(prov.resume(job_id, model=record.model), client_key=record.client_key)
        journal = self._log()
        journal.transition(record.client_key, "submitted", detail="job id given by hand", durable=True,
                           handle=handle, error=None)
        found = journal.get(record.client_key)
        assert found is not None
        return found

    def forget(self, ref: str, *, force: bool = False) -> JobRecord:
        """Drop a job from the log. An unfinished job (it may still cost money, or an uncertain
        submit may exist on the host) is refused unless ``force``. Returns what was dropped."""
        record = self.job(ref)
        if not record.finished and not force:
            raise ValidationError.single(
                "job", f"{record.client_key} is {record.state}, not finished: forgetting it lets the same command "
                "submit a second, paid job; pass --force (force=True) to forget it anyway")
        self._log().delete(record.client_key)
        if record.output and record.state != "saved":
            release(record.output)  # an empty reserved default name, never a file with content
        return record


def switch_output(journal: JobLog, record: JobRecord, output: str) -> None:
    """Point a job at another output, giving back the one it named before when that is an
    empty reserved default name no other unfinished job names (a file with content stays)."""
    if output == record.output:
        return
    journal.transition(record.client_key, output=output)
    if record.output:
        release_unless_named(journal, record.output)


def release_unless_named(journal: JobLog, output: str) -> None:
    """:func:`~kling_core.outputs.release` ``output`` unless an unfinished job will still save to it."""
    if not any(r.output == output for r in journal.list(states=UNFINISHED)):
        release(output)
