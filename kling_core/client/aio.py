"""``AsyncEditClient``: the one implementation of the Python API, assembled from its parts.

It checks a request against the chosen provider before any network call (:mod:`.base`),
submits it at most once or picks up the job it already has (:mod:`.submit`, :mod:`.pickup`),
polls to a deadline and saves the result atomically (:mod:`.follow`), and works the job log
(:mod:`.joblog_ops`).
"""

from __future__ import annotations

from typing import TypedDict, Unpack

from kling_core.client.base import PathArg, StatusCallback, SubmitCallback, unexpected_keywords
from kling_core.client.joblog_ops import JobLogMixin
from kling_core.client.submit import SubmitMixin
from kling_core.client.timeouts import check_timeout
from kling_core.contract.models import EditRequest, EditResult


class JobOptions(TypedDict, total=False):
    """The keywords of running one edit (``AsyncEditClient.edit``, ``edit``, ``aedit``)."""

    output: PathArg | None
    provider: str | None
    on_submit: SubmitCallback | None
    on_status: StatusCallback | None
    new: bool  # default False
    timeout: float | None


JOB_OPTIONS = JobOptions.__optional_keys__

class AsyncEditClient(SubmitMixin, JobLogMixin):
    """Submit, follow and collect edits on any installed provider."""

    def __repr__(self) -> str:
        return f"<AsyncEditClient provider={self.default_provider!r}>"

    async def edit(self, request: EditRequest, **options: Unpack[JobOptions]) -> EditResult:
        """The whole job: check, submit once (or pick up this request's job), wait, save."""
        unexpected_keywords("edit", options, JOB_OPTIONS)
        output, timeout = options.get("output"), options.get("timeout")
        check_timeout(timeout)
        handle = await self.submit(request, provider=options.get("provider"), new=options.get("new", False),
                                   output=output)
        on_submit = options.get("on_submit")
        if on_submit is not None:
            on_submit(handle)
        return await self._collect(handle, output, on_status=options.get("on_status"), timeout=timeout)
