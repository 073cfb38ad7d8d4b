"""A submit that certainly never left (no free connection, no connection at all) is a
definite, retryable "nothing was submitted", never an uncertain submit."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from kling_core import hookimpl
from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.errors import ProviderError, SubmitUncertainError
from kling_core.http.base import SUBMIT_CONNECT_RETRIES
from kling_core.http.retry import NOT_SENT
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.provider import ProviderContext
from kling_core.settings import ProviderSettings
from tests.test_http_provider import KEY, REQ, Demo, Sleeps


def raising(exc: type[httpx.TransportError], log: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        log.append(request.method)
        raise exc("simulated", request=request)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("exc", [httpx.PoolTimeout, httpx.ConnectError, httpx.ConnectTimeout])
def test_a_submit_that_never_left_is_not_uncertain(exc: type[httpx.TransportError]) -> None:
    tries: list[str] = []
    sleeps = Sleeps()
    prov = Demo(ProviderContext(name="demo", environ={"DEMO_KEY": KEY}, transport=raising(exc, tries), sleep=sleeps))
    with pytest.raises(ProviderError) as info:
        asyncio.run(prov.submit(REQ))
    assert not isinstance(info.value, SubmitUncertainError)
    assert info.value.code == NOT_SENT and info.value.retryable
    assert "nothing was submitted" in info.value.message and exc.__name__ in info.value.message
    assert len(tries) == SUBMIT_CONNECT_RETRIES + 1 and len(sleeps) == SUBMIT_CONNECT_RETRIES


def test_a_pool_timeout_says_no_connection_was_free() -> None:
    prov = Demo(ProviderContext(name="demo", environ={"DEMO_KEY": KEY}, transport=raising(httpx.PoolTimeout, []),
                                sleep=Sleeps()))
    with pytest.raises(ProviderError, match="no connection was free in time"):
        asyncio.run(prov.submit(REQ))


def test_a_real_refused_connection_on_loopback() -> None:
    # A port nothing listens on: bound, then closed, so the connect is refused by the kernel.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ProviderSettings(base_url=f"http://127.0.0.1:{port}", timeout=5.0)
    prov = Demo(ProviderContext(name="demo", settings=settings, environ={"DEMO_KEY": KEY}, sleep=Sleeps()))

    async def main() -> None:
        try:
            await prov.submit(REQ)
        finally:
            await prov.aclose()

    with pytest.raises(ProviderError) as info:
        asyncio.run(main())
    assert not isinstance(info.value, SubmitUncertainError) and info.value.code == NOT_SENT
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_a_read_timeout_after_sending_stays_uncertain() -> None:
    prov = Demo(ProviderContext(name="demo", environ={"DEMO_KEY": KEY}, transport=raising(httpx.ReadTimeout, []),
                                sleep=Sleeps()))
    with pytest.raises(SubmitUncertainError):
        asyncio.run(prov.submit(REQ))


class _Plugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(Demo)


def test_the_job_log_records_refused_and_a_rerun_submits(tmp_path: Path) -> None:
    """Through the client: the claim ends ``failed`` (no job was created), so running the same
    request again submits it, instead of refusing it as an uncertain submit."""
    host = PluginHost(entrypoints=False, plugins=[("demo", _Plugin())])
    journal = JobLog(tmp_path)
    posted: list[str] = []

    def pool_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("simulated", request=request)

    def accepting(request: httpx.Request) -> httpx.Response:
        posted.append(request.method)
        return httpx.Response(200, json={"id": "j1"})

    def client(handler: Any) -> AsyncEditClient:
        return AsyncEditClient(provider="demo", config=config_from_document({}), host=host,
                               environ={"DEMO_KEY": KEY}, transport=httpx.MockTransport(handler),
                               sleep=Sleeps(), journal=journal, rng=random.Random(1))

    async def submit(handler: Any) -> Any:
        c = client(handler)
        try:
            return await c.start(c.request("https://media.example.com/a.mp4", "sunset"))
        finally:
            await c.aclose()

    with pytest.raises(ProviderError) as info:
        asyncio.run(submit(pool_timeout))
    assert not isinstance(info.value, SubmitUncertainError)
    (record,) = journal.list(limit=0)
    assert record.state == "failed" and record.job_id is None
    started = asyncio.run(submit(accepting))
    assert started.handle.job_id == "j1" and posted == ["POST"]
    assert journal.get(started.client_key).state == "submitted"
