"""HttpProvider: at-most-once submits, bounded GET retries, credential guard (HeaderAuth, auth=False),
the result GET after a "completed" status, route templates, error tables."""

from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar

import httpx
import pytest
import respx

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import Completed, JobStatus, Queued, Running, Succeeded
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
from kling_core.sdk import HeaderAuth, HostSpec, ResultShape, Routes, StatusShape
from kling_core.settings import CredentialSpec, PollSettings, ProviderSettings, Secret

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


def seen_by() -> tuple[Demo, list[httpx.Request]]:
    """A Demo provider whose transport answers 200 {} and keeps every request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    return Demo(ProviderContext(name="demo", environ={"DEMO_KEY": KEY}, transport=httpx.MockTransport(handler))), seen


def test_header_auth_refuses_a_foreign_host_and_nothing_is_sent() -> None:
    p, seen = seen_by()

    async def go() -> None:
        try:
            # A hand-built request (no auth=False mark) to another host: the credential object
            # itself refuses to sign it, so it never leaves.
            with pytest.raises(ProtocolError, match=re.escape("refusing to send the demo credential to 'evil.example.org'")):
                await p.send_get(httpx.Request("GET", "https://evil.example.org/x"))
            with pytest.raises(ProtocolError, match="refusing"):
                await p.client.send(httpx.Request("GET", "https://evil.example.org/x"), auth=p.auth)
            await p.send_get(p.make_request("GET", STATUS))
        finally:
            await p.aclose()

    run(go())
    assert [str(r.url) for r in seen] == [STATUS]
    assert seen[0].headers["x-api-key"] == KEY


def test_header_auth_on_its_own() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    auth = HeaderAuth("demo", lambda: frozenset({"api.example.com"}), secret=Secret(KEY), header="authorization",
                      scheme="Key")
    assert KEY not in repr(auth)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            for url in ("https://evil.example.org/x", "https://api.example.com.evil.example.org/x",
                        "https://user@evil.example.org/api.example.com"):
                with pytest.raises(ProtocolError, match="not its API host"):
                    await client.get(url, auth=auth)
            await client.get(STATUS, auth=auth)

    run(go())
    assert len(seen) == 1 and seen[0].headers["authorization"] == f"Key {KEY}"


def test_a_request_built_with_auth_false_carries_no_credential() -> None:
    p, seen = seen_by()

    async def go() -> None:
        try:
            await p.send_get(p.make_request("GET", STATUS, auth=False))  # even to the API host
            await p.send_get(p.make_request("GET", "https://cdn.example.net/file.mp4", auth=False))
            await p.send_get(p.make_request("GET", STATUS))
        finally:
            await p.aclose()

    run(go())
    assert [("x-api-key" in r.headers) for r in seen] == [False, False, True]
    for r in seen[:2]:
        assert not any(KEY in v for v in r.headers.values())


def test_a_key_smuggled_into_a_hand_built_request_never_reaches_another_host() -> None:
    p, seen = seen_by()

    async def go() -> None:
        try:
            # A plugin bug: its own header (fal storage puts a token in authorization) holding the key.
            rogue = p.make_request("GET", "https://evil.example.org/x", auth=False,
                                   headers={"authorization": f"Key {KEY}", "x-other": f"k={KEY}"})
            await p.send_get(rogue)
        finally:
            await p.aclose()

    with pytest.raises(ProtocolError, match=r"refusing to send the .* credential to 'evil\.example\.org'"):
        run(go())
    assert seen == []  # refused before anything left


# -- a host described as data: the result GET after "completed", route templates ---------------


class Spec(HttpProvider):
    name: ClassVar[str] = "spec"
    credentials = (CredentialSpec("api_key", "DEMO_KEY"),)
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),))
    default_base_url: ClassVar[str] = BASE
    auth_header: ClassVar[str] = "x-api-key"
    auth_scheme: ClassVar[str] = ""
    spec = HostSpec(
        routes=Routes(submit="v1/jobs", status="v1/jobs/{job_id}", result="v1/jobs/{job_id}/result",
                      cancel="v1/jobs/{job_id}/cancel"),
        status=StatusShape(states={"waiting": "queued", "working": "running", "done": "completed", "broken": "failed"}),
        result=ResultShape(url=("video.url",)),
    )

    def submit_body(self, request: EditRequest) -> dict[str, Any]:
        return {"prompt": request.prompt}


def spec_host(status: dict[str, Any], result: httpx.Response | None = None) -> tuple[Spec, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.raw_path.endswith(b"/result"):
            return result or httpx.Response(200, json={"video": {"url": "https://cdn.example.net/out.mp4"}})
        return httpx.Response(200, json=status)

    return Spec(ProviderContext(name="spec", environ={"DEMO_KEY": KEY}, transport=httpx.MockTransport(handler))), seen


def _spec_status(p: Spec, handle: JobHandle) -> JobStatus:
    async def go() -> JobStatus:
        try:
            return await p.status(handle)
        finally:
            await p.aclose()

    return run(go())  # type: ignore[no-any-return]


def test_completed_triggers_exactly_one_result_get() -> None:
    p, seen = spec_host({"status": "done"})
    assert p.parse_status(httpx.Response(200, json={"status": "done"}, request=httpx.Request("GET", STATUS)),
                          JobHandle(provider="spec", job_id="j1")) == Completed("j1", "spec")
    status = _spec_status(p, JobHandle(provider="spec", job_id="j1", model="kling-o1"))
    assert isinstance(status, Succeeded) and status.result.video.url == "https://cdn.example.net/out.mp4"
    assert [r.url.path for r in seen] == ["/v1/jobs/j1", "/v1/jobs/j1/result"]
    assert all(r.method == "GET" and r.headers["x-api-key"] == KEY for r in seen)


@pytest.mark.parametrize(("state", "cls"), [("waiting", Queued), ("working", Running)])
def test_an_unfinished_status_fetches_no_result(state: str, cls: type) -> None:
    p, seen = spec_host({"status": state})
    assert isinstance(_spec_status(p, JobHandle(provider="spec", job_id="j1")), cls)
    assert [r.url.path for r in seen] == ["/v1/jobs/j1"]


def test_the_result_url_the_host_gave_wins_over_the_template() -> None:
    p, seen = spec_host({"status": "done"})
    handle = JobHandle(provider="spec", job_id="j1", urls={"response": f"{BASE}/elsewhere/j1/result"})
    assert isinstance(_spec_status(p, handle), Succeeded)
    assert [r.url.path for r in seen] == ["/v1/jobs/j1", "/elsewhere/j1/result"]


@pytest.mark.parametrize(
    ("job_id", "raw"),
    [("a/b", b"/v1/jobs/a%2Fb"), ("a?b=1", b"/v1/jobs/a%3Fb%3D1"), ("../admin", b"/v1/jobs/..%2Fadmin"),
     ("a#b", b"/v1/jobs/a%23b"), ("a b%2F", b"/v1/jobs/a%20b%252F")],
)
def test_route_templates_quote_a_job_id_as_one_path_segment(job_id: str, raw: bytes) -> None:
    p, seen = spec_host({"status": "waiting"})
    handle = JobHandle(provider="spec", job_id=job_id)
    assert p.route(p.spec.routes.status or "", handle) == f"{BASE}{raw.decode()}"
    resumed = p.resume(job_id)
    assert resumed.urls == {"status": f"{BASE}{raw.decode()}", "response": f"{BASE}{raw.decode()}/result",
                            "cancel": f"{BASE}{raw.decode()}/cancel"}
    assert _spec_status(p, handle) == Queued(job_id, "spec")
    assert [r.url.raw_path for r in seen] == [raw]  # no query, no fragment, no parent-directory hop


def test_a_journaled_url_on_another_host_is_refused_before_sending() -> None:
    p, seen = spec_host({"status": "done"})
    tampered = JobHandle(provider="spec", job_id="j1", urls={"status": "https://evil.example.org/j1"})
    with pytest.raises(ProtocolError, match="refusing"):
        _spec_status(p, tampered)
    p, seen = spec_host({"status": "done"})
    tampered = JobHandle(provider="spec", job_id="j1", urls={"response": "https://evil.example.org/j1/result"})
    with pytest.raises(ProtocolError, match="refusing"):  # the result step too, after a real status GET
        _spec_status(p, tampered)
    assert [r.url.host for r in seen] == ["api.example.com"]


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

