"""The Python API: one async implementation, and a thin sync facade over it.

``AsyncEditClient`` checks a request against the chosen provider before any network call,
submits it at most once (claimed in the job log under its client key before the submit goes
out), polls with backoff to a deadline, and saves the result atomically. Without an explicit
client key the key is derived from the request, so running the same edit again picks up its
job instead of paying for a second one (see :mod:`kling_core.joblog`). ``EditClient`` runs the
same coroutines on a private event loop thread, so it also works where a loop is already
running (notebooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from kling_core.config import KlingConfig, load_config
from kling_core.contract.checks import local_path
from kling_core.contract.models import EditRequest, EditResult, Element
from kling_core.contract.status import Cancelled, Failed, JobStatus, Running, Succeeded
from kling_core.errors import (
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    KlingError,
    ProviderError,
    SubmitUncertainError,
    ValidationError,
    failure_error,
)
from kling_core.http.retry import backoff_delays
from kling_core.joblog import (
    UNFINISHED,
    JobLog,
    JobRecord,
    base_key,
    canonical,
    owner_alive,
    parse_age,
    parse_states,
)
from kling_core.joblog.canonical import Canonical
from kling_core.joblog.hints import resume_command, uncertain_hint
from kling_core.joblog.migrate import LEGACY, legacy_request_hash
from kling_core.media.locate import require_ffmpeg
from kling_core.outputs import release
from kling_core.plugins import PluginHost
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider, ProviderContext
from kling_core.serialization import structure, unstructure

T = TypeVar("T")
log = logging.getLogger(__name__)
StatusCallback = Callable[[JobStatus], None]
# How long a run waits for another process that is submitting the same job right now.
CLAIM_WAIT = 60.0
CANCEL_WAIT = 15.0
MAX_TIMEOUT = 7 * 86400.0


def _failed_error(status: Failed) -> KlingError:
    err = status.error
    return failure_error(status.provider, status.job_id, err.message, kind=err.kind, code=err.code,
                         retryable=err.retryable)


def _reword(exc: KlingError, message: str) -> None:
    exc.message = message
    exc.args = (message,)


def check_timeout(timeout: float | None, *, field: str = "timeout") -> float | None:
    """None, or a finite number of seconds in (0, 7 days]; else a ValidationError naming ``field``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ValidationError.single(field, f"{timeout!r} is not a number of seconds")
    if not math.isfinite(timeout) or timeout <= 0 or timeout > MAX_TIMEOUT:
        raise ValidationError.single(field, f"{timeout!r} must be more than 0 and at most {MAX_TIMEOUT:.0f} s (7 days)")
    return float(timeout)


@attrs.frozen
class Started:
    """A job this request is now bound to: just submitted, or picked up (``resumed``)."""

    handle: JobHandle
    client_key: str
    take: int = 1
    resumed: bool = False


class AsyncEditClient:
    """Submit, follow and collect edits on any installed provider."""

    def __init__(
        self,
        *,
        provider: str | None = None,
        config: KlingConfig | None = None,
        host: PluginHost | None = None,
        environ: Mapping[str, str] | None = None,
        transport: Any = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        journal: JobLog | None = None,
        use_journal: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config if config is not None else load_config()
        self.host = host if host is not None else PluginHost()
        self.default_provider = provider or self.config.default_provider
        self.environ = environ
        self.transport = transport
        self._sleep = sleep or asyncio.sleep
        self._clock = clock or time.time
        # The job log (None: no log, every submit is a new job under a random key).
        self.journal: JobLog | None = (journal or JobLog()) if use_journal else None
        self._rng = rng or random.Random()
        self._providers: dict[str, Provider] = {}

    def __repr__(self) -> str:
        return f"<AsyncEditClient provider={self.default_provider!r}>"

    # -- providers --------------------------------------------------------------------
    def provider(self, name: str | None = None) -> Provider:
        """The provider instance for ``name`` (built once; credentials resolved now)."""
        name = name or self.default_provider
        if name not in self._providers:
            cls = self.host.provider_class(name)
            ctx = ProviderContext(
                name=cls.name,
                settings=self.config.provider_settings(name),
                media=self.config.media,
                environ=self.environ,
                transport=self.transport,
                sleep=self._sleep,
                clock=self._clock,
                work_dir=Path(self.config.media.work_dir) if self.config.media.work_dir else None,
                uploader=self.host.uploader(cls.name),
                events=self.host.job_event,
            )
            self._providers[name] = cls(ctx)
        return self._providers[name]

    # -- requests ---------------------------------------------------------------------
    def request(
        self,
        video: str,
        prompt: str,
        *,
        images: Iterable[str] = (),
        elements: Iterable[Element | Mapping[str, Any]] = (),
        model: str | None = None,
        quality: str | None = None,
        keep_audio: bool | None = None,
        edit_mode: str | None = None,
        aspect_ratio: str | None = None,
        duration: int | None = None,
        webhook_url: str | None = None,
        client_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        provider: str | None = None,
    ) -> EditRequest:
        """Build a request, layering config defaults under what is given; None means unset."""
        name = provider or self.default_provider
        doc: dict[str, Any] = {
            "video": str(video),
            "prompt": prompt,
            "images": [str(i) for i in images],
            "elements": [unstructure(e) if isinstance(e, Element) else dict(e) for e in elements],
        }
        given = {
            "model": model,
            "quality": quality,
            "keep_audio": keep_audio,
            "edit_mode": edit_mode,
            "aspect_ratio": aspect_ratio,
            "duration": duration,
            "webhook_url": webhook_url,
            "client_key": client_key,
            "options": dict(options) if options else None,
        }
        layers = [self.config.defaults]
        if name in self.config.providers:
            layers.insert(0, self.config.providers[name].defaults)
        for key in ("model", "quality", "keep_audio", "edit_mode"):
            if given[key] is None:
                for layer in layers:
                    value = getattr(layer, key)
                    if value is not None:
                        given[key] = value
                        break
        doc.update({k: v for k, v in given.items() if v is not None})
        request: EditRequest = structure(doc, EditRequest, subject="request")
        return request

    def check(self, request: EditRequest, provider: str | None = None) -> None:
        """Every problem with this request on this provider, before any network call."""
        # The same function the contract suite runs, so the suite tests what users get.
        check_request(self.provider(provider), request, find_uploader=self.host.uploader)

    # -- submitting, or picking up the job already submitted ----------------------------
    def _identify(self, request: EditRequest, prov: Provider) -> tuple[Canonical, str | None]:
        """The canonical request and, without an explicit client key, the derived base key."""
        assert self.journal is not None
        canon = canonical(request, prov.name)
        base = None if request.client_key else base_key(canon.identity, self.journal.salt())
        return canon, base

    def _lookup(self, request: EditRequest, base: str | None, *, new: bool) -> JobRecord | None:
        """The logged job this request maps to before any new claim (None: submit a new one)."""
        assert self.journal is not None
        if request.client_key is not None:
            return self.journal.get(request.client_key)
        if new or base is None:
            return None
        latest = self.journal.latest(base)
        if latest is not None and (latest.state in UNFINISHED or not latest.created_on_host):
            return latest
        return None

    def pending(self, request: EditRequest, *, provider: str | None = None, new: bool = False) -> JobRecord | None:
        """The job that running ``request`` again would pick up instead of submitting (or None).

        Unfinished, uncertain and succeeded-but-not-saved jobs are picked up; a job whose
        result was saved, or that failed or was cancelled, is not (the request makes a new take).
        """
        if self.journal is None or new:
            return None
        prov = self.provider(provider)
        _canon, base = self._identify(request, prov)
        record = self._lookup(request, base, new=new)
        if record is None or (record.finished and request.client_key is None) or not record.created_on_host:
            return None
        return record

    async def submit(self, request: EditRequest, *, provider: str | None = None, new: bool = False,
                     output: str | Path | None = None) -> JobHandle:
        """Check, prepare and submit once; or return the job this request already has.

        The handle is in the job log before it is returned. ``new`` submits a new take even
        when the same request has an unfinished job.
        """
        return (await self.start(request, provider=provider, new=new, output=output)).handle

    async def start(self, request: EditRequest, *, provider: str | None = None, new: bool = False,
                    output: str | Path | None = None) -> Started:
        """:meth:`submit`, saying which job it bound to and whether it was picked up."""
        prov = self.provider(provider)
        self.check(request, prov.name)
        if new and request.client_key is not None:
            raise ValidationError.single("new", "a new job cannot reuse the given client key; drop one of them")
        require_ffmpeg(self.config.media, self.environ)  # results are verified with it: fail before paying
        out = str(Path(output).expanduser().absolute()) if output is not None else None
        if self.journal is None:
            key = request.client_key or uuid.uuid4().hex
            prepared = await prov.prepare(attrs.evolve(request, client_key=key))
            return Started(await self._send(prov, prepared, key), key)
        canon, base = self._identify(request, prov)
        record = self._lookup(request, base, new=new)
        if record is not None:
            found = await self._pickup(record, prov, request, canon)
            if found is not None:
                return self._picked_up(record, found, out)
        prepared = await prov.prepare(request)  # uploads etc.: nothing billable yet
        if record is None:
            # The claim is written before the side effect, so a crash cannot hide a job.
            claimed, created = self.journal.claim(
                provider=prov.name, model=request.model, request=canon.stored(),
                request_sha256=canon.request_sha256, client_key=request.client_key, base_key=base, new=new,
                output=out,
            )
            if not created:  # another process claimed it between our look and our claim
                found = await self._pickup(claimed, prov, request, canon)
                if found is not None:
                    return self._picked_up(claimed, found, out)
                await self._reclaim(claimed, prov, out)
            record = claimed
        else:
            await self._reclaim(record, prov, out)
        key = record.client_key
        handle = await self._send(prov, attrs.evolve(prepared, client_key=key), key)
        return Started(handle, key, record.take)

    async def _reclaim(self, record: JobRecord, prov: Provider, output: str | None) -> None:
        """Take a key whose last submit created no job for a new submit, unless another process just did."""
        assert self.journal is not None
        if self.journal.reclaim(record.client_key, output=output):
            return
        now = self.journal.get(record.client_key)
        found = await self._pickup(now, prov, None, None) if now is not None else None
        exc = SubmitUncertainError("the job changed while it was being submitted again", provider=prov.name,
                                   client_key=record.client_key)
        where = f"{found.provider} job {found.job_id}" if found is not None else "it"
        _reword(exc, f"{prov.name}: another process submitted job {record.client_key} at the same time; it was not "
                     f"submitted again here: follow {where} with `{resume_command(record.client_key)}`")
        raise exc

    def _picked_up(self, record: JobRecord, handle: JobHandle, output: str | None) -> Started:
        if output is not None and output != record.output and self.journal is not None:
            self.journal.transition(record.client_key, output=output)
        log.info("picked up %s job %s (client key %s): not submitted again", handle.provider, handle.job_id,
                 record.client_key)
        return Started(handle, record.client_key, record.take, resumed=True)

    async def _send(self, prov: Provider, prepared: EditRequest, key: str) -> JobHandle:
        """The one submit; its outcome goes to the log before anything else happens."""
        journal = self.journal
        try:
            handle = await prov.submit(prepared)
        except SubmitUncertainError as exc:
            if journal is not None:
                fields: dict[str, Any] = {"error": exc.reason}
                if exc.job_id:
                    fields["job_id"] = exc.job_id  # never lose an id the host showed us
                journal.transition(key, "uncertain", detail=exc.reason, durable=True, **fields)
                message = exc.message.replace(f"; reconcile with client key {key}", "")
                if exc.job_id:
                    hint = (f"the answer named job {exc.job_id}: the same command, or `{resume_command(key)}`, "
                            "picks it up")
                else:
                    hint = uncertain_hint(key, prov.name, can_reconcile=prov.capabilities.can_reconcile)
                _reword(exc, f"{message}\n{hint}")
            raise
        except ProviderError as exc:
            if exc.status_code is not None and (exc.status_code >= 500 or exc.status_code == 408):
                # The host took the request and then failed: a job may exist. Keep the claim
                # (a re-run reconciles or refuses) and say how to settle it.
                exc.client_key = key
                hint = ""
                if journal is not None:
                    journal.transition(key, "uncertain", detail=exc.message, durable=True, error=exc.message,
                                       job_id=exc.job_id)
                    hint = "\n" + uncertain_hint(key, prov.name, can_reconcile=prov.capabilities.can_reconcile)
                _reword(exc, exc.message + f"; the job may exist: it was NOT resubmitted (client key {key}){hint}")
            elif journal is not None:
                journal.transition(key, "failed", detail="refused: no job was created", error=exc.message)
            raise
        except KlingError as exc:
            if journal is not None:
                journal.transition(key, "failed", detail="refused: no job was created", error=exc.message)
            raise
        except BaseException:
            # Interrupted mid-flight (Ctrl-C, cancellation, a bug): the POST may have landed.
            if journal is not None:
                journal.transition(key, "uncertain", detail="interrupted while submitting", durable=True)
            raise
        handle = attrs.evolve(
            handle,
            client_key=handle.client_key or key,
            submitted_at=handle.submitted_at if handle.submitted_at is not None else self._clock(),
            model=handle.model or prepared.model,
        )
        if journal is not None:
            journal.transition(key, "submitted", durable=True, handle=handle, error=None)
        log.info("submitted %s job %s (client key %s)", handle.provider, handle.job_id, key)
        return handle

    def _check_same_request(self, record: JobRecord, prov: Provider, request: EditRequest, canon: Canonical) -> None:
        if record.base_key is not None:
            return  # derived from this very request (webhook aside)
        digest = legacy_request_hash(request) if record.request_sha256.startswith(LEGACY) else canon.request_sha256
        if record.request_sha256 != digest or record.provider != prov.name:
            raise ValidationError.single("client_key", f"{record.client_key!r} was already used for a different request")

    async def _pickup(self, record: JobRecord, prov: Provider, request: EditRequest | None,
                      canon: Canonical | None) -> JobHandle | None:
        """The job a logged record stands for; None only when it is safe to submit under its key."""
        assert self.journal is not None
        if request is not None and canon is not None:
            self._check_same_request(record, prov, request, canon)
        key = record.client_key
        if record.state == "submitting" and record.handle is None and owner_alive(record.owner) is not False:
            record = await self._await_claim(record)
        if record.handle is not None:
            return record.handle
        if record.job_id is not None:  # an id seen in an uncertain answer, or given by hand
            handle = attrs.evolve(prov.resume(record.job_id, model=record.model), client_key=key)
            self.journal.transition(key, "submitted", durable=True, handle=handle)
            return handle
        if not record.created_on_host:
            return None  # the host refused it outright: no job exists, the key is free
        if record.state == "submitting":
            self.journal.transition(key, "uncertain", detail="the process submitting it ended before the host answered")
        # An earlier submit's outcome is unknown. Ask the host where it can tell; never guess.
        if prov.capabilities.can_reconcile:
            found = await prov.reconcile(key)
            if found is not None:
                found = attrs.evolve(found, client_key=found.client_key or key)
                self.journal.transition(key, "submitted", detail="found on the host by its client key", durable=True,
                                        handle=found, error=None)
                log.info("reconciled client key %s to %s job %s", key, prov.name, found.job_id)
                return found
            log.info("client key %s: the host has no job, so the earlier submit never landed", key)
            self.journal.transition(key, "failed", detail="the host has no job under this key: never created",
                                    error="the submit never reached the host")
            return None
        exc = SubmitUncertainError("an earlier submit under this client key has an unknown outcome",
                                   provider=prov.name, client_key=key)
        _reword(exc, f"{prov.name}: an earlier submit under client key {key} has an unknown outcome; it was NOT "
                     f"resubmitted\n{uncertain_hint(key, prov.name, can_reconcile=False)}")
        raise exc

    async def _await_claim(self, record: JobRecord) -> JobRecord:
        """Another live process is submitting this job right now: wait for its answer."""
        assert self.journal is not None
        waited = 0.0
        while waited < CLAIM_WAIT:
            await asyncio.sleep(0.2)
            waited += 0.2
            now = self.journal.get(record.client_key)
            if now is None:
                break
            record = now
            if record.state != "submitting" or owner_alive(record.owner) is False:
                return record
        if record.state == "submitting" and owner_alive(record.owner) is not False:
            exc = SubmitUncertainError("another process is submitting this job", provider=record.provider,
                                       client_key=record.client_key)
            _reword(exc, f"{record.provider}: another process ({record.owner}) is submitting job {record.client_key} "
                         f"right now and it was not submitted again; follow it with "
                         f"`kling jobs show {record.client_key}`, then `{resume_command(record.client_key)}`")
            raise exc
        return record

    def handle(self, provider: str, job_id: str) -> JobHandle:
        """A handle for a job id: the logged one (with host URLs) or the provider's rebuild."""
        prov = self.provider(provider)
        if self.journal is not None:
            record = self.journal.find_job(prov.name, job_id)
            if record is not None and record.handle is not None:
                return record.handle
        return prov.resume(job_id)

    async def status(self, handle: JobHandle) -> JobStatus:
        return await self.provider(handle.provider).status(handle)

    async def cancel(self, handle: JobHandle) -> bool:
        accepted = await self.provider(handle.provider).cancel(handle)
        if accepted:
            self._record(handle, "cancelled", detail="cancel requested")
        return accepted

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
            status = await prov.status(handle)
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
                _reword(exc, f"{job} did not finish within {waited:.0f}s and was cancelled (cancel_on_timeout)")
                return exc
            note = f"; cancelling it failed{why}"
        else:
            note = "; it was not cancelled"
        if handle.client_key and self.journal is not None and self.journal.get(handle.client_key) is not None:
            again = f"wait for it and save it with `{resume_command(handle.client_key)}`"
            self.journal.transition(handle.client_key, error=f"not finished after waiting {waited:.0f}s")
        else:
            again = f"pick it up with `kling result {handle.provider} {handle.job_id} -o OUT.mp4`"
        _reword(exc, f"{job} did not finish within {waited:.0f}s{note}: {again} "
                     f"(or check it with `kling status {handle.provider} {handle.job_id}`)")
        return exc

    def _record(self, handle: JobHandle, state: str, *, detail: str | None = None, **changes: Any) -> None:
        if self.journal is not None and handle.client_key:
            self.journal.transition(handle.client_key, state, detail=detail, **changes)

    async def save(self, result: EditResult, dest: str | Path) -> EditResult:
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

    async def edit(
        self,
        request: EditRequest,
        *,
        output: str | Path | None = None,
        provider: str | None = None,
        on_submit: Callable[[JobHandle], None] | None = None,
        on_status: StatusCallback | None = None,
        new: bool = False,
        timeout: float | None = None,
    ) -> EditResult:
        """The whole job: check, submit once (or pick up this request's job), wait, save."""
        check_timeout(timeout)
        handle = await self.submit(request, provider=provider, new=new, output=output)
        if on_submit is not None:
            on_submit(handle)
        result = await self.wait(handle, on_status=on_status, timeout=timeout)
        if output is not None:
            result = await self.save(result, output)
        return result

    # -- the job log ------------------------------------------------------------------
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
        output: str | Path | None = None,
        timeout: float | None = None,
        job_id: str | None = None,
        on_status: StatusCallback | None = None,
    ) -> EditResult:
        """Pick up a logged job (key or job id): wait for it and save it; never submits.

        ``output`` defaults to the path the job was started with (no save when it has none).
        ``job_id`` attaches the host's id to an uncertain job (found on the host's dashboard).
        """
        timeout = check_timeout(timeout)
        journal = self._log()
        record = self.job(ref)
        prov = self.provider(record.provider)
        if job_id is not None:
            record = self._attach(record, prov, job_id)
        if record.state == "failed" and record.handle is None:
            raise JobFailedError(record.error or "the submit was refused", provider=record.provider,
                                 job_id=record.job_id or record.client_key)
        handle = await self._pickup(record, prov, None, None)
        if handle is None:
            raise ValidationError.single("job", f"{record.client_key}: the host has no such job (the submit never "
                                         "landed); run the original command again to submit it")
        if output is not None:
            journal.transition(record.client_key, output=str(Path(output).expanduser().absolute()))
        result = await self.wait(handle, on_status=on_status, timeout=timeout)
        dest = output if output is not None else record.output
        if dest is not None:
            result = await self.save(result, dest)
        return result

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

    async def aclose(self) -> None:
        for prov in self._providers.values():
            await prov.aclose()
        self._providers.clear()

    async def __aenter__(self) -> AsyncEditClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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


class _Portal:
    """A private event loop on a daemon thread: sync calls run coroutines there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kling-portal", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class EditClient:
    """The same client, blocking. Each method runs the async one; no logic is duplicated."""

    def __init__(self, **kwargs: Any) -> None:
        self._portal = _Portal()
        self._async: AsyncEditClient = self._portal.run(_make_async(kwargs))

    def __repr__(self) -> str:
        return f"<EditClient provider={self._async.default_provider!r}>"

    @property
    def aio(self) -> AsyncEditClient:
        return self._async

    def request(self, *args: Any, **kwargs: Any) -> EditRequest:
        return self._async.request(*args, **kwargs)

    def check(self, request: EditRequest, provider: str | None = None) -> None:
        self._async.check(request, provider)

    def handle(self, provider: str, job_id: str) -> JobHandle:
        return self._async.handle(provider, job_id)

    def submit(self, request: EditRequest, **kw: Any) -> JobHandle:
        return self._portal.run(self._async.submit(request, **kw))

    def status(self, handle: JobHandle) -> JobStatus:
        return self._portal.run(self._async.status(handle))

    def wait(self, handle: JobHandle, **kw: Any) -> EditResult:
        return self._portal.run(self._async.wait(handle, **kw))

    def result(self, handle: JobHandle, **kw: Any) -> EditResult:
        return self.wait(handle, **kw)

    def cancel(self, handle: JobHandle) -> bool:
        return self._portal.run(self._async.cancel(handle))

    def save(self, result: EditResult, dest: str | Path) -> EditResult:
        return self._portal.run(self._async.save(result, dest))

    def edit(self, request: EditRequest, **kw: Any) -> EditResult:
        return self._portal.run(self._async.edit(request, **kw))

    def start(self, request: EditRequest, **kw: Any) -> Started:
        return self._portal.run(self._async.start(request, **kw))

    def pending(self, request: EditRequest, **kw: Any) -> JobRecord | None:
        return self._async.pending(request, **kw)

    def jobs(self, **kw: Any) -> list[JobRecord]:
        return self._async.jobs(**kw)

    def job(self, ref: str) -> JobRecord:
        return self._async.job(ref)

    def resume(self, ref: str, **kw: Any) -> EditResult:
        return self._portal.run(self._async.resume(ref, **kw))

    def forget(self, ref: str, *, force: bool = False) -> JobRecord:
        return self._async.forget(ref, force=force)

    def close(self) -> None:
        try:
            self._portal.run(self._async.aclose())
        finally:
            self._portal.close()

    def __enter__(self) -> EditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make_async(kwargs: Mapping[str, Any]) -> AsyncEditClient:
    return AsyncEditClient(**kwargs)


async def aedit(
    video: str,
    prompt: str,
    *,
    output: str | Path | None = None,
    provider: str | None = None,
    config: KlingConfig | None = None,
    on_status: StatusCallback | None = None,
    new: bool = False,
    timeout: float | None = None,
    **fields: Any,
) -> EditResult:
    """One edit, start to finish: ``await kling_core.aedit("in.mp4", "…", output="out.mp4")``.

    Running the same edit again picks up its job while the result is not saved yet, and
    makes a new take once it was; ``new=True`` always makes a new job.
    """
    async with AsyncEditClient(provider=provider, config=config) as client:
        request = client.request(video, prompt, provider=provider, **fields)
        return await client.edit(request, output=output, on_status=on_status, new=new, timeout=timeout)


def edit(
    video: str,
    prompt: str,
    *,
    output: str | Path | None = None,
    provider: str | None = None,
    config: KlingConfig | None = None,
    on_status: StatusCallback | None = None,
    new: bool = False,
    timeout: float | None = None,
    **fields: Any,
) -> EditResult:
    """Blocking ``aedit``: ``kling_core.edit("in.mp4", "make it @Image1", images=["a.png"])``."""
    portal = _Portal()
    try:
        return portal.run(
            aedit(video, prompt, output=output, provider=provider, config=config, on_status=on_status, new=new,
                  timeout=timeout, **fields)
        )
    finally:
        portal.close()
