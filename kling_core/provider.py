"""The provider interface every plugin implements.

A provider is a class with its capabilities and credentials as class-level data, and four
async operations over a :class:`JobHandle`: ``submit``, ``status``, ``cancel`` and
``resume`` (rebuilding a handle from a bare job id), plus ``follow``, the poll of a caller
that waits for the job (``status`` unless the provider needs more). The core owns
validation, polling, downloads and the CLI; HTTP providers get retries, at-most-once
submits and redaction from :mod:`kling_core.http`.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs
from attrs import field

from kling_core.contract.capabilities import ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus
from kling_core.errors import Problem, UnsupportedError
from kling_core.settings import (
    CredentialSpec,
    MediaSettings,
    PollSettings,
    ProviderSettings,
    Secret,
    credential_status,
    resolve_credential,
)


@runtime_checkable
class MediaUploader(Protocol):
    """Turns a local file into a URL the host can fetch (a ``kling_media_uploader`` plugin)."""

    async def upload(self, path: Path, content_type: str, /) -> str: ...


@attrs.frozen
class JobHandle:
    """Everything needed to find a submitted job again, in this process or a later one."""

    provider: str
    job_id: str
    model: str | None = None
    client_key: str | None = None
    urls: Mapping[str, str] = field(factory=dict)  # host-issued URLs (fal status/response/cancel)
    submitted_at: float | None = None
    data: Mapping[str, str] = field(factory=dict)  # any other host detail needed to resume


def _real_sleep() -> Callable[[float], Awaitable[None]]:
    import asyncio

    return asyncio.sleep


@attrs.frozen
class ProviderContext:
    """What the core hands a provider when it builds one."""

    name: str
    settings: ProviderSettings = field(factory=ProviderSettings)
    media: MediaSettings = field(factory=MediaSettings)
    environ: Mapping[str, str] | None = field(default=None, repr=False)  # None: os.environ; may hold keys
    # Injected for tests: an httpx transport (respx router, loopback) and a clock.
    transport: Any = None
    sleep: Callable[[float], Awaitable[None]] = field(factory=_real_sleep)
    clock: Callable[[], float] = time.time
    work_dir: Path | None = None
    # The media uploader a plugin offers for this provider (kling_media_uploader), if any:
    # hosts that fetch media by URL only upload local files through it in prepare().
    uploader: MediaUploader | None = None
    # Where job events go (the plugin host's kling_job_event hook, or a test's list).
    events: Callable[[str, str, str, object], None] | None = None


class Provider(abc.ABC):
    """Base class of provider plugins. Subclasses set the class-level data below."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    credentials: ClassVar[tuple[CredentialSpec, ...]] = ()
    capabilities: ClassVar[ProviderCapabilities]
    # Is this a hosted provider reached over HTTP (gets the cassette half of the suite)?
    is_http: ClassVar[bool] = False
    # Polling cadence when config sets none: hosted jobs take minutes, the mock seconds.
    default_poll: ClassVar[PollSettings] = PollSettings()

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        # Resolve credentials up front: a missing key is reported before any network call.
        self.secrets: dict[str, Secret] = {
            spec.name: resolve_credential(self.name, spec, ctx.settings, ctx.environ, first=i == 0)
            for i, spec in enumerate(self.credentials)
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.name!r}>"

    @property
    def poll(self) -> PollSettings:
        return self.ctx.settings.poll or self.default_poll

    # -- introspection (class level, no instance needed) ------------------------------
    @classmethod
    def key_status(cls, settings: ProviderSettings, environ: Mapping[str, str]) -> dict[str, bool]:
        """Where each key comes from (an env variable, or a ``keyring:`` reference) -> whether
        it is set, for `kling providers`."""
        out = {}
        for i, spec in enumerate(cls.credentials):
            row = credential_status(cls.name, spec, settings, environ, first=i == 0)
            ref = str(row["reference"])
            out[ref[4:] if ref.startswith("env:") else ref] = bool(row["set"])
        return out

    # -- checks -----------------------------------------------------------------------
    def check(self, request: EditRequest) -> list[Problem]:
        """Provider-specific problems beyond the capability data; default none."""
        return []

    # -- operations -------------------------------------------------------------------
    async def prepare(self, request: EditRequest) -> EditRequest:
        """Turn the request into one the host can take.

        By default a host that fetches media by URL only gets local files uploaded through
        the context's uploader (UnsupportedError naming each file when there is none).
        """
        uploader = self.media_uploader()
        if uploader is None and self.capabilities.accepts_local_files:
            return request  # the provider reads local files itself (the mock)
        from kling_core.uploads import upload_local_media

        return await upload_local_media(request, self.name, uploader)

    def media_uploader(self) -> MediaUploader | None:
        """What sends this provider's local media to its host: a plugin's uploader from the
        context, else the host's own storage; None when local files are not uploaded."""
        return self.ctx.uploader or self.own_uploader()

    def own_uploader(self) -> MediaUploader | None:
        """The host's own storage for local media (fal's CDN), used when no plugin offers one."""
        return None

    @abc.abstractmethod
    async def submit(self, request: EditRequest) -> JobHandle:
        """Create the job. Called at most once per logical job."""

    @abc.abstractmethod
    async def status(self, handle: JobHandle) -> JobStatus:
        """One status look-up; a succeeded status carries the result.

        This is what `kling status` calls: it only reports, and must not start or finish
        work on the job (see :meth:`follow`).
        """

    async def follow(self, handle: JobHandle) -> JobStatus:
        """One poll by a caller that waits for the job (the client's wait loop).

        A provider may do work here that a bare status look-up must not, such as adopting
        an orphaned local render. Default: :meth:`status`.
        """
        return await self.status(handle)

    async def cancel(self, handle: JobHandle) -> bool:
        """Ask the host to cancel; True if it accepted. Default: not supported."""
        raise UnsupportedError(self.name, [Problem("cancel", "this provider cannot cancel jobs")])

    async def dry_run(self, request: EditRequest) -> Mapping[str, Any]:
        """Validate and price without creating a job, where the host supports it."""
        raise UnsupportedError(self.name, [Problem("dry_run", "this provider has no dry run")])

    async def reconcile(self, client_key: str) -> JobHandle | None:
        """The job a submit under ``client_key`` created, or None if the host has none.

        Only for hosts with ``capabilities.can_reconcile``: it lets an ambiguous submit be
        resolved by a read instead of a second, possibly duplicate, submit.
        """
        raise UnsupportedError(self.name, [Problem("client_key", "this host cannot look jobs up by client key")])

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        """A handle for a job id given by hand (`kling status PROVIDER JOB_ID`)."""
        return JobHandle(provider=self.name, job_id=job_id, model=model)

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most providers hold nothing
        """Release connections."""
