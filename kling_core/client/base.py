"""What every part of the client builds on: its settings, providers, requests, handles and status."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeAlias, TypedDict, Unpack

from kling_core.client.fallback import ProviderArg, provider_chain
from kling_core.config import KlingConfig, load_config
from kling_core.contract.models import AspectRatio, EditMode, EditRequest, Element, ModelName, Quality
from kling_core.contract.status import JobStatus
from kling_core.inflight import HostLimit, LoopBound, http_concurrency, max_in_flight
from kling_core.joblog import JobLog
from kling_core.media.stamp import Stamp
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


class ClientOptions(TypedDict, total=False):
    """The keywords of a client (``AsyncEditClient``, ``EditClient``): a type checker sees a typo."""

    provider: str | Sequence[str] | None  # a list ("fal,segmind"): fallback hosts, first the default
    config: KlingConfig | None
    host: PluginHost | None
    environ: Mapping[str, str] | None
    transport: Any
    sleep: Callable[[float], Awaitable[None]] | None
    clock: Callable[[], float] | None
    journal: JobLog | None
    use_journal: bool  # default True
    rng: random.Random | None


class EditFields(TypedDict, total=False):
    """The keywords of an edit request (``request``, ``edit``, ``aedit``); None (or left out) means unset."""

    images: Iterable[PathArg]
    elements: Iterable[Element | Mapping[str, Any]]
    model: ModelName | None
    quality: Quality | None
    keep_audio: bool | None
    edit_mode: EditMode | None
    aspect_ratio: AspectRatio | None
    duration: int | None
    webhook_url: str | None
    client_key: str | None
    options: Mapping[str, Any] | None
    provider: str | Sequence[str] | None  # its defaults layer: the first host's


CLIENT_OPTIONS = ClientOptions.__optional_keys__
EDIT_FIELDS = EditFields.__optional_keys__
# The request fields taken as given (None: unset).
_GIVEN = ("model", "quality", "keep_audio", "edit_mode", "aspect_ratio", "duration", "webhook_url", "client_key",
          "options")
_DEFAULTED = ("model", "quality", "keep_audio", "edit_mode")  # the fields a config layer defaults


def unexpected_keywords(function: str, given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """The TypeError Python raises for an unknown keyword, for a ``**kwargs: Unpack[...]`` signature."""
    for key in given:
        if key not in allowed:
            raise TypeError(f"{function}() got an unexpected keyword argument {key!r}")


class ClientBase:
    """Settings and providers, building and checking requests, and status/cancel by handle."""

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        unexpected_keywords(type(self).__name__, options, CLIENT_OPTIONS)
        config, host = options.get("config"), options.get("host")
        self.config = config if config is not None else load_config()
        self.host = host if host is not None else PluginHost()
        self.host.declare(self.config)  # `[providers.NAME] uses = "BASE"` tables add providers
        # A list of providers is a fallback chain (kling_core.client.fallback); its first is the default.
        given = provider_chain(options.get("provider"))
        self.default_chain: tuple[str, ...] = given or (self.config.default_provider,
                                                        *self.config.fallback_providers)
        self.default_provider: str = self.default_chain[0]
        self.environ = options.get("environ")
        self.transport = options.get("transport")
        # `is None`, not `or`: a recorder that is also a list (empty at first) is falsy.
        sleep, clock, rng = options.get("sleep"), options.get("clock"), options.get("rng")
        self._sleep = asyncio.sleep if sleep is None else sleep
        self._clock = time.time if clock is None else clock
        # The job log (None: no log, every submit is a new job under a random key).
        journal = options.get("journal")
        self.journal: JobLog | None = (journal or JobLog()) if options.get("use_journal", True) else None
        # A log the client opened is closed with it; one the caller passed stays the caller's.
        self._own_journal = self.journal is not None and self.journal is not journal
        self._rng = random.Random() if rng is None else rng
        self._providers: dict[str, Provider] = {}
        self._job_slots: dict[str, LoopBound] = {}  # provider name -> its bound on jobs in flight
        self._submit_slots: dict[str, LoopBound] = {}  # provider name -> its bound on submits at once
        self._host_limits: dict[str, HostLimit] = {}  # provider name -> its jobs here, the limit it proved
        self._ffmpeg_proof: Stamp | None = None  # the binary require_ffmpeg passed, as it was then

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

    def in_flight_limit(self, provider: str | None = None) -> int:
        """How many jobs this client runs at once on ``provider`` through ``edit`` (the single-job
        path): its ``max_in_flight`` setting, else the host's documented limit, else 100.

        Needs no event loop and no credential. A job past the bound waits before its submit.
        After the host refused a submit for its own concurrency limit (Kling's error 1303), the
        bound is the number of jobs this client had in flight then (at least 1), for the
        client's life (see :class:`kling_core.inflight.HostLimit`).
        """
        name = provider or self.default_provider
        cls = self.host.provider_class(name)
        limit = max_in_flight(self.config.provider_settings(name), cls.capabilities)
        learned = self._host_limits.get(cls.name)
        return min(limit, learned.bound) if learned is not None and learned.bound is not None else limit

    def _first_provider(self, provider: ProviderArg) -> str:
        """The host a ``provider`` argument (one name or a fallback chain) tries first; the
        client's default when it names none."""
        return (provider_chain(provider) or (self.default_provider,))[0]

    def _slots(self, provider: str | None = None) -> LoopBound:
        """The bound on jobs in flight on ``provider`` (see :mod:`kling_core.inflight`)."""
        name = provider or self.default_provider
        slots = self._job_slots.get(name)
        if slots is None:
            slots = self._job_slots[name] = LoopBound(self.in_flight_limit(name))
        return slots

    def _host_limit(self, name: str) -> HostLimit:
        """The jobs this client has on the provider named ``name`` (its canonical name), and the
        concurrency limit its refusals proved."""
        found = self._host_limits.get(name)
        if found is None:
            found = self._host_limits[name] = HostLimit()
        return found

    def _submitting(self, provider: str) -> LoopBound:
        """The bound on submits being prepared and sent at once on ``provider`` (its request bound)."""
        slots = self._submit_slots.get(provider)
        if slots is None:
            slots = self._submit_slots[provider] = LoopBound(http_concurrency(self.in_flight_limit(provider)))
        return slots

    # -- requests ---------------------------------------------------------------------
    def request(self, video: PathArg, prompt: str, **fields: Unpack[EditFields]) -> EditRequest:
        """Build a request, layering config defaults under what is given; None means unset."""
        unexpected_keywords("request", fields, EDIT_FIELDS)
        name = self._first_provider(fields.get("provider"))
        doc: dict[str, Any] = {
            "video": _fspath(video),
            "prompt": prompt,
            "images": [_fspath(i) for i in fields.get("images", ())],
            "elements": [unstructure(e) if isinstance(e, Element) else dict(e) for e in fields.get("elements", ())],
        }
        plain: dict[str, Any] = dict(fields)
        given = {key: plain.get(key) for key in _GIVEN}
        given["options"] = dict(given["options"]) if given["options"] else None
        layers = [self.config.defaults]
        if name in self.config.providers:
            layers.insert(0, self.config.providers[name].defaults)
        for key in _DEFAULTED:
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
        # This loop's download client, once no download uses it; there is none to close when
        # the guarded fetch (and httpx) was never imported, e.g. a mock edit.
        fetch = sys.modules.get("kling_core.media.fetch")
        if fetch is not None:
            await fetch.close_shared_client()
        if self._own_journal and self.journal is not None:
            self.journal.close()  # reopens if the client is used again

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
