"""The Python API: one async implementation, and a thin sync facade over it.

``AsyncEditClient`` checks a request against the chosen provider before any network call,
submits it at most once (journalled under its client key), polls with backoff to a deadline,
and saves the result atomically. ``EditClient`` runs the same coroutines on a private event
loop thread, so it also works where a loop is already running (notebooks).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import attrs

from kling_core.config import KlingConfig, load_config
from kling_core.contract.models import EditRequest, EditResult, Element
from kling_core.contract.status import Cancelled, Failed, JobStatus, Succeeded
from kling_core.errors import (
    JobCancelledError,
    JobTimeoutError,
    KlingError,
    ProviderError,
    SubmitUncertainError,
    ValidationError,
    failure_error,
)
from kling_core.files import copy_atomic
from kling_core.http.retry import backoff_delays
from kling_core.journal import Journal, JournalEntry, request_hash
from kling_core.plugins import PluginHost
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider, ProviderContext
from kling_core.serialization import structure, unstructure

T = TypeVar("T")
log = logging.getLogger(__name__)
StatusCallback = Callable[[JobStatus], None]


def _failed_error(status: Failed) -> KlingError:
    err = status.error
    return failure_error(status.provider, status.job_id, err.message, kind=err.kind, code=err.code,
                         retryable=err.retryable)


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
        journal: Journal | None = None,
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
        self.journal = (journal or Journal()) if use_journal else None
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

    # -- job operations ---------------------------------------------------------------
    async def submit(self, request: EditRequest, *, provider: str | None = None) -> JobHandle:
        """Check, prepare and submit once. The handle is journalled before it is returned."""
        prov = self.provider(provider)
        self.check(request, prov.name)
        if request.client_key is None:
            request = attrs.evolve(request, client_key=uuid.uuid4().hex)
        key = request.client_key
        assert key is not None
        digest = request_hash(request)
        if self.journal is not None:
            existing = self.journal.get(key)
            if existing is not None:
                found = await self._existing(existing, prov, digest)
                if found is not None:
                    return found
        prepared = await prov.prepare(request)  # uploads etc.: nothing billable yet
        if self.journal is not None:
            # The claim is written before the side effect, so a crash cannot hide a job.
            self.journal.put(JournalEntry(key, prov.name, digest, "submitting"))
        try:
            handle = await prov.submit(prepared)
        except SubmitUncertainError:
            if self.journal is not None:
                self.journal.update(key, state="uncertain")
            raise
        except ProviderError as exc:
            if exc.status_code is not None and (exc.status_code >= 500 or exc.status_code == 408):
                # The host took the request and then failed: a job may exist. Keep the claim
                # (a retry under this key reconciles or refuses) and say how to follow up.
                if self.journal is not None:
                    self.journal.update(key, state="uncertain")
                exc.client_key = key
                exc.message += f"; the job may exist: it was NOT resubmitted (client key {key})"
                exc.args = (exc.message,)
            elif self.journal is not None:
                self.journal.delete(key)  # a refusal (4xx) or nothing sent: no job exists, the key is free
            raise
        except KlingError:
            if self.journal is not None:
                self.journal.delete(key)
            raise
        except BaseException:
            # Interrupted mid-flight (Ctrl-C, cancellation, a bug): the POST may have landed.
            if self.journal is not None:
                self.journal.update(key, state="uncertain")
            raise
        if handle.client_key is None or handle.submitted_at is None:
            handle = attrs.evolve(
                handle,
                client_key=handle.client_key or key,
                submitted_at=handle.submitted_at or self._clock(),
                model=handle.model or request.model,
            )
        if self.journal is not None:
            self.journal.update(key, state="submitted", handle=handle)
        log.info("submitted %s job %s (client key %s)", handle.provider, handle.job_id, key)
        return handle

    async def _existing(self, entry: JournalEntry, prov: Provider, digest: str) -> JobHandle | None:
        """The job already submitted under this key; None only when it is safe to submit."""
        if entry.request_sha256 != digest or entry.provider != prov.name:
            raise ValidationError.single(
                "client_key", f"{entry.client_key!r} was already used for a different request"
            )
        if entry.handle is not None:
            return entry.handle
        # An earlier submit's outcome is unknown. Ask the host where it can tell; never guess.
        if prov.capabilities.can_reconcile:
            found = await prov.reconcile(entry.client_key)
            if found is not None:
                assert self.journal is not None
                self.journal.update(entry.client_key, state="submitted", handle=found)
                log.info("reconciled client key %s to %s job %s", entry.client_key, prov.name, found.job_id)
                return found
            log.info("client key %s: the host has no job, so the earlier submit never landed", entry.client_key)
            return None
        raise SubmitUncertainError(
            "an earlier submit under this client key has an unknown outcome",
            provider=prov.name,
            client_key=entry.client_key,
        )

    def handle(self, provider: str, job_id: str) -> JobHandle:
        """A handle for a job id: the journalled one (with host URLs) or the provider's rebuild."""
        prov = self.provider(provider)
        if self.journal is not None:
            entry = self.journal.find_job(prov.name, job_id)
            if entry is not None and entry.handle is not None:
                return entry.handle
        return prov.resume(job_id)

    async def status(self, handle: JobHandle) -> JobStatus:
        return await self.provider(handle.provider).status(handle)

    async def cancel(self, handle: JobHandle) -> bool:
        accepted = await self.provider(handle.provider).cancel(handle)
        if accepted and self.journal is not None and handle.client_key:
            self.journal.update(handle.client_key, state="cancelled")
        return accepted

    async def wait(self, handle: JobHandle, *, on_status: StatusCallback | None = None) -> EditResult:
        """Poll until the job ends; raise the canonical error for failure or a passed deadline."""
        prov = self.provider(handle.provider)
        poll = prov.poll
        delays = backoff_delays(poll, self._rng)
        started = self._clock()
        deadline = started + poll.deadline
        while True:
            status = await prov.status(handle)
            log.debug("%s job %s: %s", handle.provider, handle.job_id, status.state)
            if on_status is not None:
                on_status(status)
            if prov.ctx.events is not None:
                prov.ctx.events(handle.provider, handle.job_id, status.state, status)
            if isinstance(status, Succeeded):
                self._record(handle, "succeeded", result=unstructure(status.result))
                return status.result
            if isinstance(status, Failed):
                self._record(handle, "failed", error=status.error.message)
                raise _failed_error(status)
            if isinstance(status, Cancelled):
                self._record(handle, "cancelled")
                raise JobCancelledError(provider=handle.provider, job_id=handle.job_id)
            delay = next(delays)
            if self._clock() + delay > deadline:
                raise JobTimeoutError(provider=handle.provider, job_id=handle.job_id, waited=self._clock() - started)
            await self._sleep(delay)

    def _record(self, handle: JobHandle, state: str, **changes: Any) -> None:
        if self.journal is not None and handle.client_key:
            self.journal.update(handle.client_key, state=state, **changes)

    async def save(self, result: EditResult, dest: str | Path) -> EditResult:
        """Write the result video to ``dest`` atomically; return the result with its path."""
        dest = Path(dest).expanduser().resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        url = result.video.url
        if url.lower().startswith("file://") or "://" not in url:
            src = Path(unquote(urlparse(url).path)) if "://" in url else Path(url)
            await copy_atomic(src, dest)
        else:
            from kling_core.http.download import download_result

            prov = self.provider(result.provider)
            await download_result(result, dest, prov.ctx)
        log.info("saved %s job %s to %s", result.provider, result.job_id, dest)
        video = attrs.evolve(result.video, path=str(dest), file_size=dest.stat().st_size)
        saved = attrs.evolve(result, video=video)
        return saved

    async def edit(
        self,
        request: EditRequest,
        *,
        output: str | Path | None = None,
        provider: str | None = None,
        on_submit: Callable[[JobHandle], None] | None = None,
        on_status: StatusCallback | None = None,
    ) -> EditResult:
        """The whole job: check, submit once, wait, and save to ``output`` if given."""
        handle = await self.submit(request, provider=provider)
        if on_submit is not None:
            on_submit(handle)
        result = await self.wait(handle, on_status=on_status)
        if output is not None:
            result = await self.save(result, output)
        return result

    async def aclose(self) -> None:
        for prov in self._providers.values():
            await prov.aclose()
        self._providers.clear()

    async def __aenter__(self) -> AsyncEditClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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
    **fields: Any,
) -> EditResult:
    """One edit, start to finish: ``await kling_core.aedit("in.mp4", "…", output="out.mp4")``."""
    async with AsyncEditClient(provider=provider, config=config) as client:
        request = client.request(video, prompt, provider=provider, **fields)
        return await client.edit(request, output=output, on_status=on_status)


def edit(
    video: str,
    prompt: str,
    *,
    output: str | Path | None = None,
    provider: str | None = None,
    config: KlingConfig | None = None,
    on_status: StatusCallback | None = None,
    **fields: Any,
) -> EditResult:
    """Blocking ``aedit``: ``kling_core.edit("in.mp4", "make it @Image1", images=["a.png"])``."""
    portal = _Portal()
    try:
        return portal.run(
            aedit(video, prompt, output=output, provider=provider, config=config, on_status=on_status, **fields)
        )
    finally:
        portal.close()
