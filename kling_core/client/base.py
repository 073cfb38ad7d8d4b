"""What every part of the client builds on: its settings, providers, requests, handles and status."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Self, TypeAlias

from kling_core.config import KlingConfig, load_config
from kling_core.contract.models import AspectRatio, EditMode, EditRequest, Element, ModelName, Quality
from kling_core.contract.status import JobStatus
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider, ProviderContext
from kling_core.serialization import structure, unstructure

StatusCallback = Callable[[JobStatus], None]
SubmitCallback = Callable[[JobHandle], None]
# A local file or a URL: a str, or any path-like (pathlib.Path, ...).
PathArg: TypeAlias = "str | os.PathLike[str]"


def _fspath(value: Any) -> Any:
    """A path-like as its string; anything else as given, for the request's own type check."""
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else value


class ClientBase:
    """Settings and providers, building and checking requests, and status/cancel by handle."""

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
        video: PathArg,
        prompt: str,
        *,
        images: Iterable[PathArg] = (),
        elements: Iterable[Element | Mapping[str, Any]] = (),
        model: ModelName | None = None,
        quality: Quality | None = None,
        keep_audio: bool | None = None,
        edit_mode: EditMode | None = None,
        aspect_ratio: AspectRatio | None = None,
        duration: int | None = None,
        webhook_url: str | None = None,
        client_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        provider: str | None = None,
    ) -> EditRequest:
        """Build a request, layering config defaults under what is given; None means unset."""
        name = provider or self.default_provider
        doc: dict[str, Any] = {
            "video": _fspath(video),
            "prompt": prompt,
            "images": [_fspath(i) for i in images],
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

    # -- jobs by handle ---------------------------------------------------------------
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

    def _record(self, handle: JobHandle, state: str, *, detail: str | None = None, **changes: Any) -> None:
        if self.journal is not None and handle.client_key:
            self.journal.transition(handle.client_key, state, detail=detail, **changes)

    # -- lifetime ---------------------------------------------------------------------
    async def aclose(self) -> None:
        for prov in self._providers.values():
            await prov.aclose()
        self._providers.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
