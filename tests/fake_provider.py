"""A scriptable in-memory provider for testing the core client without any host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from kling_core import hookimpl
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest, EditResult, OutputVideo
from kling_core.contract.status import JobStatus, Queued, Running, Succeeded
from kling_core.errors import ProviderError, SubmitUncertainError
from kling_core.provider import JobHandle, Provider
from kling_core.settings import CredentialSpec, PollSettings


class FakeProvider(Provider):
    name = "fake"
    title = "Scripted test provider"
    capabilities = ProviderCapabilities(
        models=(ModelCapabilities("kling-o1"),), can_cancel=True, accepts_local_files=False
    )
    default_poll = PollSettings(initial=1.0, factor=2.0, max=4.0, jitter=0.0, deadline=60.0)
    script: ClassVar[list[JobStatus] | None] = None
    submits: ClassVar[list[EditRequest]] = []
    cancels: ClassVar[list[str]] = []

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._statuses: Iterator[JobStatus] | None = None

    async def submit(self, request: EditRequest) -> JobHandle:
        type(self).submits.append(request)
        job_id = f"job-{len(type(self).submits)}"
        script = type(self).script or default_script(job_id)
        self._statuses = iter(script)
        return JobHandle(provider=self.name, job_id=job_id, model=request.model)

    async def status(self, handle: JobHandle) -> JobStatus:
        assert self._statuses is not None
        return next(self._statuses)

    async def cancel(self, handle: JobHandle) -> bool:
        type(self).cancels.append(handle.job_id)
        return True


class LosingFake(FakeProvider):
    """Loses the answer of its first submit (the job may exist); can look jobs up by key."""

    name = "losing"
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),), can_reconcile=True)
    known: ClassVar[dict[str, JobHandle]] = {}
    lookups: ClassVar[list[str]] = []

    async def submit(self, request: EditRequest) -> JobHandle:
        handle = await super().submit(request)
        if len(type(self).submits) == 1:
            raise SubmitUncertainError("answer lost", provider=self.name, client_key=request.client_key)
        return handle

    async def reconcile(self, client_key: str) -> JobHandle | None:
        type(self).lookups.append(client_key)
        return type(self).known.get(client_key)


class BadGatewayFake(FakeProvider):
    """Answers every submit with HTTP 502: the request reached the host, the job may exist."""

    name = "badgateway"

    async def submit(self, request: EditRequest) -> JobHandle:
        type(self).submits.append(request)
        raise ProviderError("bad gateway", provider=self.name, status_code=502, retryable=True)


class BodyErrorFake(FakeProvider):
    """Answers every submit with HTTP 200 whose body names a 503: the host may have the job."""

    name = "bodyerror"

    async def submit(self, request: EditRequest) -> JobHandle:
        from kling_core.http.errormap import ErrorInfo, ErrorTable

        type(self).submits.append(request)
        raise ErrorTable().build(self.name, 200, ErrorInfo("busy"), lookup_status=503)


class KeyedFake(FakeProvider):
    name = "keyed"
    credentials = (CredentialSpec("key", "FAKE_TEST_KEY"),)


def default_script(job_id: str) -> list[JobStatus]:
    result = EditResult(video=OutputVideo(url="https://cdn.example/out.mp4"), job_id=job_id, provider="fake",
                        model="kling-o1")
    return [Queued(job_id, "fake", position=1), Running(job_id, "fake", progress=50.0),
            Succeeded(job_id, "fake", result=result)]


class FakePlugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(FakeProvider)
        register(KeyedFake)
        register(LosingFake)
        register(BadGatewayFake)
        register(BodyErrorFake)
