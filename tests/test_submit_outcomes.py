"""What a submit's outcome leaves in the job log: a host that took the request (answered 2xx, named
a job id) is never logged as a refusal, so a re-run never submits (pays) again; an id the host
named is kept for resume; a submit that fails while reading an error answer gives back its
request slot."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fake_provider import FakePlugin, FakeProvider
from test_fal_provider import APP
from test_segmind_provider import VIDEO
from test_segmind_provider import make as segmind_provider

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.contract.models import EditRequest
from kling_core.errors import ProviderError, SubmitUncertainError
from kling_core.joblog import JobLog
from kling_core.joblog.hints import record_hints
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle

SEGMIND_V1 = "https://api.segmind.com/v1/kling-o1-video-to-video-edit"
FAL_SUBMIT = "https://queue.fal.run/fal-ai/kling-video/o1/video-to-video/edit"


async def no_sleep(seconds: float) -> None:
    return None


def segmind_v1_client(tmp_path: Path, router: respx.Router, **media: object) -> AsyncEditClient:
    cfg = config_from_document({"providers": {"segmind": {"options": {"api": "v1"}}},
                                "media": {"work_dir": str(tmp_path / "work"), **media}})
    return AsyncEditClient(provider="segmind", config=cfg, environ={"SEGMIND_API_KEY": "sk-test"},
                           transport=httpx.MockTransport(router.handler), sleep=no_sleep,
                           journal=JobLog(tmp_path / "state"))


# -- a Segmind v1 job that ran (HTTP 200) but whose answer could not be used ---------------

@pytest.mark.parametrize(("answer", "media", "said"), [
    (httpx.Response(200, json={"status": "COMPLETED"}), {}, "names no output video"),
    (httpx.Response(200, content=b"x" * 5000, headers={"content-type": "video/mp4"}),
     {"max_download_bytes": 1000}, "media.max_download_bytes = 1000"),
], ids=["no-output", "video-over-the-cap"])
def test_a_segmind_v1_job_that_ran_is_uncertain_and_never_submitted_again(
        tmp_path: Path, answer: httpx.Response, media: dict[str, object], said: str) -> None:
    router = respx.Router()  # any other request (a v2 status poll) is unmatched and fails the test
    route = router.post(SEGMIND_V1).mock(return_value=answer)
    client = segmind_v1_client(tmp_path, router, **media)
    request = client.request(VIDEO, "x", client_key="v1-k")
    with pytest.raises(SubmitUncertainError) as first:
        asyncio.run(client.start(request))
    text = str(first.value)
    assert said in text and "the job ran" in text and "NOT resubmitted" in text
    assert "kling jobs show v1-k" in text  # how to settle it
    if media:  # the video is gone: paying again is the user's call, and the message says how
        assert "to pay for it again with a higher limit: `kling jobs forget v1-k --force`" in text
    assert client.journal is not None
    record = client.journal.get("v1-k")
    assert record is not None and record.state == "uncertain" and said in (record.error or "")
    # Our stand-in id is not Segmind's: nothing to resume by, so none is logged.
    assert record.job_id is None and record.created_on_host
    assert any("kling jobs show v1-k" in h for h in record_hints(record, can_reconcile=False))  # `kling jobs show`
    assert client.pending(request) is not None  # a re-run picks this job up, never a new one
    assert [p.name for p in (tmp_path / "work").rglob("*") if p.is_file()] == []  # nothing half-written kept

    again = segmind_v1_client(tmp_path, router, **media)
    with pytest.raises(SubmitUncertainError, match="unknown outcome"):
        asyncio.run(again.start(again.request(VIDEO, "x", client_key="v1-k")))
    assert route.call_count == 1


# -- send(): any error after the host took the request is uncertain, never a refusal -------

class TookItFake(FakeProvider):
    """Answers the submit with HTTP 200 that it then cannot use, naming the job or not."""

    name = "tookit"
    job_id: str | None = None

    async def submit(self, request: EditRequest) -> JobHandle:
        type(self).submits.append(request)
        raise ProviderError("the answer names no output", provider=self.name, status_code=200,
                            job_id=type(self).job_id)


class _Plugins(FakePlugin):
    def kling_register_providers(self, register: Any) -> None:
        super().kling_register_providers(register)
        register(TookItFake)


def fake_client(tmp_path: Path) -> AsyncEditClient:
    host = PluginHost(entrypoints=False, plugins=[("fake", _Plugins())])
    return AsyncEditClient(provider="tookit", config=config_from_document({}), host=host, sleep=no_sleep,
                           journal=JobLog(tmp_path), rng=random.Random(1))


@pytest.mark.parametrize("job_id", [None, "h-7"])
def test_a_2xx_submit_error_is_logged_uncertain_and_keeps_its_job_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_id: str | None) -> None:
    monkeypatch.setattr(FakeProvider, "submits", [])
    monkeypatch.setattr(TookItFake, "job_id", job_id)
    client = fake_client(tmp_path)
    request = client.request(VIDEO, "x", client_key="k-200")
    with pytest.raises(ProviderError) as first:
        asyncio.run(client.start(request))
    assert first.value.client_key == "k-200" and "NOT resubmitted (client key k-200)" in str(first.value)
    assert client.journal is not None
    record = client.journal.get("k-200")
    assert record is not None and record.state == "uncertain" and record.job_id == job_id
    if job_id is None:
        with pytest.raises(SubmitUncertainError, match="unknown outcome"):
            asyncio.run(fake_client(tmp_path).start(request))
    else:
        assert "the answer named job h-7" in str(first.value)
        started = asyncio.run(fake_client(tmp_path).start(request))
        assert started.resumed and started.handle.job_id == "h-7"
    assert len(FakeProvider.submits) == 1


# -- fal: a 2xx answer that names a request id but not the URLs to follow it ---------------

@pytest.mark.parametrize("answer", [
    {"request_id": "r1"},  # lacks the three URLs
    {"request_id": "r1", "status_url": "https://elsewhere.example/x", "response_url": f"{APP}/r1",
     "cancel_url": f"{APP}/r1/cancel"},  # a status URL on another host: not followed
], ids=["no-urls", "foreign-status-url"])
def test_a_job_id_named_in_an_unusable_answer_is_logged_and_resumed(tmp_path: Path, answer: dict[str, str]) -> None:
    router = respx.Router()
    route = router.post(FAL_SUBMIT).mock(return_value=httpx.Response(200, json=answer))

    def client() -> AsyncEditClient:
        return AsyncEditClient(provider="fal", config=config_from_document({}), environ={"FAL_KEY": "k-test"},
                               transport=httpx.MockTransport(router.handler), sleep=no_sleep,
                               journal=JobLog(tmp_path))

    first = client()
    request = first.request(VIDEO, "x", client_key="ck-1")
    with pytest.raises(SubmitUncertainError) as info:
        asyncio.run(first.start(request))
    assert info.value.job_id == "r1" and "the answer named job r1" in str(info.value)
    assert first.journal is not None
    record = first.journal.get("ck-1")
    assert record is not None and record.state == "uncertain" and record.job_id == "r1"
    started = asyncio.run(client().start(request))  # `kling jobs resume ck-1` goes the same way
    assert started.resumed and started.handle.job_id == "r1"
    assert started.handle.urls["status"].startswith(APP)  # fal's own URL, never the answer's
    assert route.call_count == 1


# -- a streamed submit (Segmind v1) whose error answer breaks off while it is read ---------

class BreaksOff(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"error": "bo'
        raise httpx.ReadError("connection reset")


def test_a_broken_error_answer_gives_back_its_request_slot(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.post(SEGMIND_V1).mock(side_effect=lambda request: httpx.Response(
        500, stream=BreaksOff(), headers={"content-type": "application/json"}))
    provider = segmind_provider(router, tmp_path, api="v1")

    async def go() -> int:
        try:
            with pytest.raises(SubmitUncertainError, match="answer was lost"):  # it may have made a job
                await provider.submit(EditRequest(prompt="x", video=VIDEO, client_key="ck-1"))
            return provider.requests.held
        finally:
            await provider.aclose()

    assert asyncio.run(go()) == 0
    assert route.call_count == 1
