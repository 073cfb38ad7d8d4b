"""Submitting a request at most once: claimed in the job log under its client key before the
submit goes out, or bound to the job that request already has (see :mod:`kling_core.joblog`)."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from kling_core.backoff import backoff_delays
from kling_core.client.base import ClientBase, PathArg
from kling_core.client.fallback import start_chain
from kling_core.client.joblog_ops import switch_output
from kling_core.client.pickup import Looked, look, pickup
from kling_core.client.reword import reword
from kling_core.client.send import send
from kling_core.contract.models import EditRequest
from kling_core.errors import ProviderError, SubmitUncertainError, ValidationError
from kling_core.inflight import HostLimit
from kling_core.joblog import JobLog, JobRecord
from kling_core.joblog.hints import resume_command
from kling_core.media.locate import require_ffmpeg
from kling_core.media.stamp import file_stamp
from kling_core.outputs import check_output, media_refs
from kling_core.provider import JobHandle, Provider
from kling_core.uploads import probe_local_media

log = logging.getLogger(__name__)


@attrs.frozen
class Started:
    """A job this request is now bound to: just submitted, or picked up (``resumed``)."""

    handle: JobHandle
    client_key: str
    take: int = 1
    resumed: bool = False


class SubmitMixin(ClientBase):
    """``submit``/``start``, and ``pending``: the job a request would pick up."""

    def pending(self, request: EditRequest, *, provider: str | None = None, new: bool = False) -> JobRecord | None:
        """The job that running ``request`` again would pick up instead of submitting (or None).

        Unfinished, uncertain and succeeded-but-not-saved jobs are picked up; a job whose
        result was saved, or that failed or was cancelled, is not (the request makes a new take).
        """
        return pending_record(self._look(request, provider, new=new))

    def _look(self, request: EditRequest, provider: str | None, *, new: bool) -> Looked | None:
        """The request's identity and logged job on ``provider`` (None: no log, or a new take)."""
        if self.journal is None or new:
            return None
        return look(self.journal, request, self.provider(provider), new=new)

    async def submit(self, request: EditRequest, *, provider: str | Sequence[str] | None = None, new: bool = False,
                     output: PathArg | None = None, max_cost: float | None = None) -> JobHandle:
        """Check, prepare and submit once; or return the job this request already has.

        The handle is in the job log before it is returned. ``new`` submits a new take even
        when the same request has an unfinished job.
        """
        return (await self.start(request, provider=provider, new=new, output=output, max_cost=max_cost)).handle

    async def start(self, request: EditRequest, *, provider: str | Sequence[str] | None = None, new: bool = False,
                    output: PathArg | None = None, max_cost: float | None = None) -> Started:
        """:meth:`submit`, saying which job it bound to and whether it was picked up.

        ``provider`` may list fallback hosts (``"fal,segmind"``), and ``max_cost`` (US dollars)
        refuses a host whose estimate is higher: see :mod:`kling_core.client.fallback`.
        """
        # Submits take turns per provider (the first host of a chain): at most as many at once
        # as it sends requests (see kling_core.inflight). Thousands of jobs started together
        # wait here, cheaply, instead of each looking up, claiming and sending in one long
        # turn of the event loop.
        output = checked_output(request, output)  # before paying: see check_output
        first = self._first_provider(provider)
        name = self.host.provider_class(first).name
        limit = self._host_limit(name)
        waited, delays = 0.0, None
        while True:
            await limit.turn()  # at once, unless the host proved a concurrency limit that is reached
            try:
                async with self._submitting(first).slot():
                    started = await start_chain(self, request, provider, new=new, output=output, max_cost=max_cost)
            except ProviderError as exc:
                limit.settle()
                if not (over_concurrency(exc) and exc.provider == name):
                    raise
                in_flight = len(limit.jobs)
                self._lower_bound(first, limit, exc)
                if in_flight == 0:
                    # The host's slots are held elsewhere (another process or machine): no job
                    # of ours will free one, so ask again after a polite pause, to the deadline.
                    poll = self.provider(first).poll
                    delays = delays or backoff_delays(poll, self._rng)
                    pause = next(delays)
                    if waited + pause > poll.deadline:
                        raise reword(exc, f"{exc.message}\nnone of this client's jobs was in flight there, and "
                                          f"the limit stayed reached for {waited:.0f}s") from None
                    waited += pause
                    await self._sleep(pause)
                continue  # resubmit once one of our jobs ends: the refusal made no job
            except BaseException:
                limit.settle()
                raise
            handle = started.handle
            self._host_limit(handle.provider).add((handle.provider, handle.job_id))  # counted before the turn ends
            limit.settle()
            return started

    def _require_ffmpeg(self) -> None:
        """:func:`require_ffmpeg` once per client; before each later submit only a ``stat``
        proves the same binary is still there, unchanged (finding it reads the cache dir)."""
        proof = self._ffmpeg_proof  # the stamp names the binary's path too
        if proof is not None:
            with contextlib.suppress(OSError):
                if file_stamp(proof[0], os.stat(proof[0])) == proof:
                    return
        exe = require_ffmpeg(self.config.media, self.environ)
        with contextlib.suppress(OSError):
            self._ffmpeg_proof = file_stamp(exe, os.stat(exe))

    def _lower_bound(self, first: str, limit: HostLimit, exc: ProviderError) -> None:
        """The host refused a submit at its concurrency limit: the jobs we have there are its
        bound for the rest of this client's life (see :class:`kling_core.inflight.HostLimit`)."""
        before = limit.bound
        bound = limit.lower()
        slots = self._job_slots.get(first)
        if slots is not None:
            slots.size = min(slots.size, bound)
        if before is None:
            log.info("%s: a submit was refused at the account's limit on jobs in flight (%s); at most %d at once "
                     "there from now on, and refused submits are sent again as jobs end (no job was made)",
                     exc.provider, exc.reason, bound)
        elif bound < before:
            log.debug("%s: jobs in flight lowered to %d after another refusal", exc.provider, bound)

    async def start_one(self, request: EditRequest, *, provider: str | None = None, new: bool = False,
                        output: PathArg | None = None) -> Started:
        """:meth:`start` on one host, without fallback or budget."""
        return await self._start_one(request, provider=provider, new=new, output=checked_output(request, output))

    async def _start_one(self, request: EditRequest, *, provider: str | None = None, new: bool = False,
                         output: PathArg | None = None, looked: Looked | None = None,
                         served: Callable[[str], Mapping[str, Any]] | None = None) -> Started:
        """:meth:`start_one`; ``looked``: this request's look-up, made since the last await;
        ``served``: the job-log fields (by client key) to write with ``submitted`` if it is sent."""
        prov = self.provider(provider)
        self.check(request, prov.name)
        if new and request.client_key is not None:
            raise ValidationError.single("new", "a new job cannot reuse the given client key; drop one of them")
        self._require_ffmpeg()  # results are verified with it: fail before paying
        if prov.media_uploader() is not None:
            probe_local_media(request)  # files the host will be sent: not media is bad input, refused now
        out = str(Path(output).expanduser().absolute()) if output is not None else None
        journal = self.journal
        if journal is None:
            key = request.client_key or uuid.uuid4().hex
            prepared = await prov.prepare(attrs.evolve(request, client_key=key))
            return Started(await send(None, prov, prepared, key, self._clock), key)
        if looked is None or not looked.fits(request, prov.name, new):
            looked = look(journal, request, prov, new=new)
        canon, base, record = looked.canon, looked.base, looked.record
        if record is not None:
            found = await pickup(journal, record, prov, request, canon)
            if found is not None:
                return _picked_up(journal, record, found, out)
        prepared = await prov.prepare(request)  # uploads etc.: nothing billable yet
        if record is None:
            # The claim is written before the side effect, so a crash cannot hide a job.
            claimed, created = journal.claim(
                provider=prov.name, model=request.model, request=canon.stored(),
                request_sha256=canon.request_sha256, client_key=request.client_key, base_key=base, new=new,
                output=out,
            )
            if not created:  # another process claimed it between our look and our claim
                found = await pickup(journal, claimed, prov, request, canon)
                if found is not None:
                    return _picked_up(journal, claimed, found, out)
                await _reclaim(journal, claimed, prov, out)
            record = claimed
        else:
            await _reclaim(journal, record, prov, out)
        key = record.client_key
        handle = await send(journal, prov, attrs.evolve(prepared, client_key=key), key, self._clock,
                            logged=served(key) if served is not None else None)
        return Started(handle, key, record.take)


def checked_output(request: EditRequest, output: PathArg | None) -> Path | None:
    """``output`` as :func:`~kling_core.outputs.check_output` resolves it, or its
    ValidationError naming ``output`` (a directory, a folder that cannot take the file, one of
    the request's local inputs): told before anything is submitted or paid for."""
    return check_output(output, inputs=media_refs(request)) if output is not None else None


def over_concurrency(exc: ProviderError) -> bool:
    """A definite refusal at the host's limit on jobs in flight: no job was made (never an
    answer whose outcome is unsure)."""
    return exc.in_flight_limit and exc.client_key is None and not isinstance(exc, SubmitUncertainError)


def pending_record(looked: Looked | None) -> JobRecord | None:
    """The job a look-up would pick up instead of submitting (see :meth:`SubmitMixin.pending`)."""
    if looked is None or looked.record is None:
        return None
    record = looked.record
    if (record.finished and looked.request.client_key is None) or not record.created_on_host:
        return None
    return record


async def _reclaim(journal: JobLog, record: JobRecord, prov: Provider, output: str | None) -> None:
    """Take a key whose last submit created no job for a new submit, unless another process just did."""
    if journal.reclaim(record.client_key, output=output):
        return
    now = journal.get(record.client_key)
    found = await pickup(journal, now, prov, None, None) if now is not None else None
    exc = SubmitUncertainError("the job changed while it was being submitted again", provider=prov.name,
                               client_key=record.client_key)
    where = f"{found.provider} job {found.job_id}" if found is not None else "it"
    raise reword(exc, f"{prov.name}: another process submitted job {record.client_key} at the same time; it was "
                      f"not submitted again here: follow {where} with `{resume_command(record.client_key)}`")


def _picked_up(journal: JobLog, record: JobRecord, handle: JobHandle, output: str | None) -> Started:
    if output is not None:
        switch_output(journal, record, output)
    log.info("picked up %s job %s (client key %s): not submitted again", handle.provider, handle.job_id,
             record.client_key)
    return Started(handle, record.client_key, record.take, resumed=True)
