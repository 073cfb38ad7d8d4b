"""Fallback hosts never pay a second host while an earlier one may hold the job, and do go on
when the earlier one certainly made none.

- A host whose key is unset in this run still shows the job the job log holds for it: the list
  stops there with an error saying how to pick the job up (never a submit to the next host).
- A submit that never left the process (no connection: code ``not_sent``) made no job: the
  next host is tried.
- An explicit client key near the 128-character limit still gives each later host its own key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fake_provider import FakeProvider

from kling_core import hookimpl
from kling_core.client import AsyncEditClient
from kling_core.client.fallback import client_key_for, definite_refusal, pending_on
from kling_core.config import config_from_document
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus, Running
from kling_core.errors import (
    AuthenticationError,
    MissingKeyError,
    ProviderError,
    SubmitUncertainError,
    ValidationError,
)
from kling_core.http.retry import NOT_SENT
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle
from kling_core.settings import CredentialSpec

URL = "https://media.example/in.mp4"
CAPS = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),), accepts_local_files=False)


class FirstHost(FakeProvider):
    """Answers a submit as ``answer`` says: a job, a lost answer (uncertain) or a 401."""

    name = "hosta"
    capabilities = CAPS
    credentials = (CredentialSpec("api_key", "HOSTA_KEY"),)
    answer: ClassVar[str] = "job"
    sent: ClassVar[list[str]] = []

    async def submit(self, request: EditRequest) -> JobHandle:
        FirstHost.sent.append(self.name)
        if self.answer == "uncertain":
            raise SubmitUncertainError("answer lost", provider=self.name, client_key=request.client_key)
        if self.answer == "refuse":
            raise AuthenticationError("bad key", provider=self.name, status_code=401)
        return JobHandle(provider=self.name, job_id=f"{self.name}-{len(FirstHost.sent)}", model=request.model)

    async def status(self, handle: JobHandle) -> JobStatus:
        return Running(handle.job_id, self.name)


class SecondHost(FirstHost):
    name = "hostb"
    credentials = (CredentialSpec("api_key", "HOSTB_KEY"),)
    answer: ClassVar[str] = "job"


class ThirdHost(SecondHost):
    name = "hostc"
    credentials = ()


class Hosts:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        for cls in (FirstHost, SecondHost, ThirdHost):
            register(cls)


@pytest.fixture(autouse=True)
def _reset() -> None:
    FirstHost.answer = "job"
    SecondHost.answer = "job"
    FirstHost.sent = []


async def _nap(_: float) -> None:
    return None


def _client(tmp: Path, environ: dict[str, str]) -> AsyncEditClient:
    return AsyncEditClient(config=config_from_document({}), host=PluginHost(entrypoints=False, plugins=[("h", Hosts())]),
                           environ=environ, sleep=_nap, journal=JobLog(tmp / "state"))


BOTH = {"HOSTA_KEY": "a", "HOSTB_KEY": "b"}


@pytest.mark.parametrize("first", ["uncertain", "job"])
@pytest.mark.parametrize("client_key", [None, "mine"])
def test_a_job_logged_on_a_host_without_its_key_stops_the_list(tmp_path: Path, first: str,
                                                               client_key: str | None) -> None:
    FirstHost.answer = first
    run1 = _client(tmp_path, BOTH)
    request = run1.request(URL, "x", provider="hosta", client_key=client_key)
    if first == "uncertain":
        with pytest.raises(SubmitUncertainError):
            asyncio.run(run1.start(request, provider="hosta,hostb"))
    else:
        assert asyncio.run(run1.start(request, provider="hosta,hostb")).handle.provider == "hosta"
    assert FirstHost.sent == ["hosta"]

    run2 = _client(tmp_path, {"HOSTB_KEY": "b"})  # the same job log; hosta's key is not set here
    request = run2.request(URL, "x", provider="hosta", client_key=client_key)
    with pytest.raises(MissingKeyError) as caught:
        asyncio.run(run2.start(request, provider="hosta,hostb"))
    assert FirstHost.sent == ["hosta"]  # hostb was not paid for the job hosta may hold
    logged = pending_on(run2, request, ("hosta", "hostb"))
    assert logged is not None and logged.provider == "hosta"  # looked up without hosta's key
    text = str(caught.value)
    assert f"already has a job on hosta (client key {logged.client_key}, {logged.state}" in text
    assert "hostb was not tried" in text
    assert f"set HOSTA_KEY, then run the same command again or `kling jobs resume {logged.client_key}`" in text
    assert run2.journal is not None and len(run2.journal.list()) == 1  # nothing claimed for hostb

    # With the key back, the same request goes to hosta's job and sends nothing: picked up, or
    # (an unknown outcome on a host that cannot look jobs up by key) refused as before.
    run3 = _client(tmp_path, BOTH)
    again = run3.start(run3.request(URL, "x", provider="hosta", client_key=client_key), provider="hosta,hostb")
    if first == "job":
        started = asyncio.run(again)
        assert started.resumed and started.handle.provider == "hosta"
    else:
        with pytest.raises(SubmitUncertainError, match="NOT resubmitted"):
            asyncio.run(again)
    assert FirstHost.sent == ["hosta"]


def test_an_unconfigured_host_with_no_job_logged_is_still_passed_over(tmp_path: Path) -> None:
    client = _client(tmp_path, {"HOSTB_KEY": "b"})
    started = asyncio.run(client.start(client.request(URL, "x", provider="hosta"), provider="hosta,hostb"))
    assert started.handle.provider == "hostb" and FirstHost.sent == ["hostb"]
    assert client.journal is not None
    record = client.journal.get(started.client_key)
    assert record is not None
    assert [(a["provider"], a["outcome"]) for a in record.attempts] == [("hosta", "skipped"), ("hostb", "served")]
    assert "HOSTA_KEY" in record.attempts[0]["reason"]


SEGMIND = "https://api.segmind.com/v2/kling-o1-video-to-video-edit"


def test_a_host_that_could_not_be_reached_made_no_job_so_the_next_is_tried(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.host}")
        if request.url.host == "queue.fal.run":
            raise httpx.ConnectError("connection refused", request=request)
        if str(request.url) == SEGMIND:
            return httpx.Response(200, json={"request_id": "r1"})
        return httpx.Response(404, json={"detail": "unexpected"})

    client = AsyncEditClient(config=config_from_document({}), environ={"FAL_KEY": "k", "SEGMIND_API_KEY": "s"},
                             transport=httpx.MockTransport(handler), sleep=_nap, journal=JobLog(tmp_path / "state"))
    started = asyncio.run(client.start(client.request("https://cdn.example.com/in.mp4", "x", provider="fal"),
                                       provider="fal,segmind"))
    assert started.handle.provider == "segmind" and started.handle.job_id == "r1"
    assert seen[-1] == "POST api.segmind.com" and set(seen[:-1]) == {"POST queue.fal.run"}
    assert client.journal is not None
    record = client.journal.get(started.client_key)
    assert record is not None
    fal, segmind = record.attempts
    assert (fal["outcome"], segmind["outcome"]) == ("skipped", "served")
    assert "nothing was submitted" in fal["reason"]
    refused = client.journal.get(fal["client_key"])
    assert refused is not None and refused.state == "failed" and refused.job_id is None


def test_only_a_submit_that_never_left_counts_as_not_sent() -> None:
    assert definite_refusal(ProviderError("could not connect", provider="fal", code=NOT_SENT))
    reached = ProviderError("could not connect", provider="fal", code=NOT_SENT)
    reached.client_key = "k"  # a submit that reached the host carries its key: the job may exist
    assert not definite_refusal(reached)
    assert not definite_refusal(ProviderError("bad gateway", provider="fal", status_code=502))
    assert not definite_refusal(SubmitUncertainError("lost", provider="fal", client_key="k"))


def test_a_client_key_of_the_longest_length_keeps_each_hosts_own(tmp_path: Path) -> None:
    FirstHost.answer = "refuse"
    key = "k" * 128
    client = _client(tmp_path, BOTH)
    request = client.request(URL, "x", provider="hosta", client_key=key)
    started = asyncio.run(client.start(request, provider="hosta,hostb"))
    assert started.handle.provider == "hostb" and FirstHost.sent == ["hosta", "hostb"]
    assert started.client_key == "k" * 122 + ".hostb"

    # Every host its own key within the limit, the same on every run: a re-run picks the job up.
    keys = [client_key_for(request, i, name).client_key for i, name in enumerate(("hosta", "hostb", "hostc"))]
    assert keys[0] == key and len(set(keys)) == 3 and all(k is not None and len(k) <= 128 for k in keys)
    again = _client(tmp_path, BOTH)
    resumed = asyncio.run(again.start(again.request(URL, "x", provider="hosta", client_key=key),
                                      provider="hosta,hostb"))
    assert resumed.resumed and resumed.client_key == started.client_key and FirstHost.sent == ["hosta", "hostb"]


def test_a_key_used_for_another_request_is_named_even_when_its_host_has_no_key_here(tmp_path: Path) -> None:
    first = _client(tmp_path, BOTH)
    asyncio.run(first.start(first.request(URL, "first prompt", provider="hosta", client_key="mine"),
                            provider="hosta,hostb"))
    second = _client(tmp_path, {"HOSTB_KEY": "b"})  # hosta's key is not set in this run
    other = second.request(URL, "a different prompt", provider="hosta", client_key="mine")
    with pytest.raises(ValidationError, match="different request") as info:
        asyncio.run(second.start(other, provider="hosta,hostb"))
    assert info.value.problems[0].path == "client_key"  # not "this request already has a job on hosta"
