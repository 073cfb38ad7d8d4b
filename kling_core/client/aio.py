"""``AsyncEditClient``: the one implementation of the Python API, assembled from its parts.

It checks a request against the chosen provider before any network call (:mod:`.base`),
submits it at most once or picks up the job it already has (:mod:`.submit`, :mod:`.pickup`),
polls to a deadline and saves the result atomically (:mod:`.follow`), and works the job log
(:mod:`.joblog_ops`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict, Unpack

from kling_core.client.base import PathArg, StatusCallback, SubmitCallback, unexpected_keywords
from kling_core.client.joblog_ops import JobLogMixin
from kling_core.client.submit import SubmitMixin, checked_output
from kling_core.client.timeouts import check_timeout
from kling_core.contract.models import EditRequest, EditResult


class JobOptions(TypedDict, total=False):
    """The keywords of running one edit (``AsyncEditClient.edit``, ``edit``, ``aedit``)."""

    output: PathArg | None
    provider: str | Sequence[str] | None  # a list ("fal,segmind"): fallback hosts (client.fallback)
    max_cost: float | None  # US dollars: a host whose price estimate is higher is not sent the job
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
        """The whole job: check, submit once (or pick up this request's job), wait, save.

        ``output`` is checked first, as the CLI checks ``-o``: a directory, a folder that
        cannot take the file, or one of the request's local inputs is a ValidationError
        naming ``output``, before anything is submitted.

        At most :meth:`in_flight_limit` jobs run at once per provider; one past it waits
        (before submitting) for a running one to end.
        """
        unexpected_keywords("edit", options, JOB_OPTIONS)
        output, timeout = options.get("output"), options.get("timeout")
        check_timeout(timeout)
        # Before its turn and before paying: a bad output path is told now, not after the job.
        output = checked_output(request, output)
        provider = options.get("provider")
        first = self._first_provider(provider)  # slots of the first host
        slots = self._slots(first)
        if slots.held >= slots.size:
            self.check(request, first)  # a bad request is told now, not after its turn
        # The job holds one of the provider's slots from before its submit to its saved result.
        async with slots.slot():
            handle = await self.submit(request, provider=provider, new=options.get("new", False), output=output,
                                       max_cost=options.get("max_cost"))
            on_submit = options.get("on_submit")
            if on_submit is not None:
                on_submit(handle)
            return await self._collect(handle, output, on_status=options.get("on_status"), timeout=timeout)
