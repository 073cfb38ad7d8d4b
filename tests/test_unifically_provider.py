"""The Unifically provider end to end over a mock transport: dry run, refusals, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from kling_core_plugins.unifically import UnificallyProvider

from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Failed, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    MissingKeyError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    SubmitUncertainError,
    UnsupportedError,
)
from kling_core.plugins import PluginHost
from kling_core.provider import ProviderContext
from kling_core.settings import ProviderSettings
from kling_core.testing.replay import preflight

KEY = "sk-CANARY-2b9e41d07c6a"
BASE = "https://api.unifically.com/v1/tasks"
V = "https://media.example.com/v.mp4"
REQ = EditRequest(prompt="Give her the jacket from @Image1", video=V, images=["https://media.example.com/j.png"])


class Host:
    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(data: dict[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"code": 200, "success": True, "data": data})


def uerr(status: int, code: str, message: str = "m", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"code": status, "data": {"message": message, "code": code}})


async def _no_sleep(seconds: float) -> None:
    return None


def provider(host: Host, uploader: Any = None, **settings: Any) -> UnificallyProvider:
    ctx = ProviderContext(
        name="unifically",
        settings=ProviderSettings(**settings),
        environ={"UNIFICALLY_API_KEY": KEY},
        transport=httpx.MockTransport(host),
        sleep=_no_sleep,
        uploader=uploader,
    )
    return UnificallyProvider(ctx)


def run(p: UnificallyProvider, coro_fn: Any) -> Any:
    async def go() -> Any:
        try:
            return await coro_fn(p)
        finally:
            await p.aclose()

    return asyncio.run(go())


def test_submit_sends_bearer_key_and_the_task_body() -> None:
    host = Host(ok({"task_id": "t1", "status": "pending"}))
    handle = run(provider(host), lambda p: p.submit(REQ))
    assert handle.job_id == "t1" and handle.model == "kling-o1" and handle.submitted_at is not None
    (sent,) = host.requests
    assert (sent.method, str(sent.url)) == ("POST", BASE)
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(sent.content)
    assert body["model"] == "kuaishou/kling-o1-video-edit"
    assert body["input"]["video_mode"] == "transform" and body["input"]["keep_audio"] is False
    assert body["input"]["prompt"] == "Give her the jacket from @image_1"


def test_dry_run_creates_nothing_and_returns_the_hosts_answer() -> None:
    host = Host(ok({"valid": True, "estimated_cost": 0.35}))
    out = run(provider(host), lambda p: p.dry_run(REQ))
    (sent,) = host.requests
    assert json.loads(sent.content)["dry_run"] is True
    assert out["response"] == {"valid": True, "estimated_cost": 0.35}
    assert out["request"]["dry_run"] is True and out["provider"] == "unifically"
    assert "warning" not in out
    json.dumps(out)  # printable as JSON by the CLI


def test_dry_run_warns_if_the_host_made_a_task_anyway() -> None:
    host = Host(ok({"task_id": "t9", "status": "pending"}))
    out = run(provider(host), lambda p: p.dry_run(REQ))
    assert "t9" in out["warning"]


def test_dry_run_error_is_mapped_and_not_retried() -> None:
    host = Host(uerr(422, "validation_error", "prompt too long"))
    with pytest.raises(ProviderValidationError, match="prompt too long"):
        run(provider(host), lambda p: p.dry_run(REQ))
    assert len(host.requests) == 1


def test_success_false_on_a_2xx_is_an_error_not_an_uncertain_submit() -> None:
    host = Host(httpx.Response(200, json={"code": 401, "success": False, "data": {"message": "bad key", "code": "authentication_failed"}}))
    with pytest.raises(AuthenticationError) as exc:
        run(provider(host), lambda p: p.submit(REQ))
    assert exc.value.status_code is None and "HTTP 200" in str(exc.value)


@pytest.mark.parametrize(
    ("number", "code", "cls", "retryable"),
    [
        (401, "authentication_failed", AuthenticationError, False),
        (422, "validation_error", ProviderValidationError, False),
        (429, "rate_limit_exceeded", RateLimitedError, True),
        (500, "internal_error", ProviderError, True),
        (402, None, InsufficientCreditsError, False),
    ],
)
def test_success_false_on_a_2xx_submit_is_its_mapped_error(
    number: int, code: str | None, cls: type[ProviderError], retryable: bool
) -> None:
    data = {"message": "host says no", **({"code": code} if code else {})}
    host = Host(httpx.Response(200, json={"code": number, "success": False, "data": data}))
    req = EditRequest(prompt="x", video=V, client_key="k-1")
    with pytest.raises(ProviderError) as exc:
        run(provider(host), lambda p: p.submit(req))
    assert type(exc.value) is cls and not isinstance(exc.value, SubmitUncertainError)
    assert (exc.value.code, exc.value.retryable, exc.value.status_code) == (code, retryable, None)
    assert "host says no" in str(exc.value) and "HTTP 200" in str(exc.value)
    assert len(host.requests) == 1, "a submit is never sent twice"


@pytest.mark.parametrize(
    ("number", "code", "cls", "retryable"),
    [
        (401, "authentication_failed", AuthenticationError, False),
        (429, "rate_limit_exceeded", RateLimitedError, True),
        (500, "internal_error", ProviderError, True),
        (400, "generation_failed", ProviderError, False),
    ],
)
def test_success_false_on_a_2xx_status_answer_is_raised_not_read_as_a_task(
    number: int, code: str, cls: type[ProviderError], retryable: bool
) -> None:
    # Even with a task-looking document inside: "success": false is an error answer.
    body = {"code": number, "success": False, "data": {"task_id": "t1", "status": "processing",
                                                       "message": "host says no", "code": code}}
    host = Host(httpx.Response(200, json=body), ok({"task_id": "t1", "status": "processing"}))
    with pytest.raises(ProviderError) as exc:
        run(provider(host), lambda p: p.status(p.resume("t1")))
    assert type(exc.value) is cls
    assert (exc.value.code, exc.value.retryable, exc.value.status_code, exc.value.job_id) == (
        code, retryable, None, "t1")
    assert "host says no" in str(exc.value) and "HTTP 200" in str(exc.value)
    if not retryable:
        assert len(host.requests) == 1


def test_success_false_on_a_dry_run_is_its_mapped_error() -> None:
    host = Host(httpx.Response(200, json={"code": 422, "success": False,
                                          "data": {"message": "prompt too long", "code": "validation_error"}}))
    with pytest.raises(ProviderValidationError, match="prompt too long") as exc:
        run(provider(host), lambda p: p.dry_run(REQ))
    assert exc.value.status_code is None and len(host.requests) == 1


def test_a_whole_job_polls_to_the_result() -> None:
    video = "https://cdn.unifically.com/outputs/a.mp4"
    host = Host(
        ok({"task_id": "t1", "status": "pending"}),
        ok({"task_id": "t1", "status": "processing"}),
        ok({"task_id": "t1", "status": "completed", "output": {"video_url": video}}),
    )

    async def go(p: UnificallyProvider) -> list[Any]:
        handle = await p.submit(REQ)
        return [handle, await p.status(handle), await p.status(handle)]

    handle, running, done = run(provider(host), go)
    assert handle.job_id == "t1" and handle.submitted_at is not None
    assert isinstance(running, Running)
    assert isinstance(done, Succeeded) and done.result.video.url == video
    assert done.result.timings.submitted_at == handle.submitted_at
    assert [(r.method, str(r.url)) for r in host.requests] == [("POST", BASE), ("GET", f"{BASE}/t1"), ("GET", f"{BASE}/t1")]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in host.requests)


def test_a_failed_task_answered_with_http_400_is_a_failed_status() -> None:
    body = {"code": 400, "success": False,
            "data": {"task_id": "t1", "status": "failed", "error": {"message": "face not found", "code": "generation_failed"}}}
    host = Host(httpx.Response(400, json=body))
    st = run(provider(host), lambda p: p.status(p.resume("t1")))
    assert isinstance(st, Failed) and st.error.message == "face not found" and st.error.code == "generation_failed"
    assert len(host.requests) == 1


def test_a_rate_limited_status_get_is_retried() -> None:
    host = Host(uerr(429, "rate_limit_exceeded", "slow down", {"retry-after": "1"}),
                ok({"task_id": "t1", "status": "processing"}))
    st = run(provider(host), lambda p: p.status(p.resume("t1")))
    assert isinstance(st, Running) and len(host.requests) == 2


def test_an_auth_failure_on_a_status_get_is_not_retried() -> None:
    host = Host(uerr(401, "authentication_failed", "Invalid API key"))
    with pytest.raises(AuthenticationError) as exc:
        run(provider(host), lambda p: p.status(p.resume("t1")))
    assert exc.value.status_code == 401 and exc.value.job_id == "t1" and len(host.requests) == 1


def test_unreadable_2xx_submit_is_uncertain_with_the_client_key() -> None:
    host = Host(httpx.Response(200, json={"code": 200, "success": True, "data": {}}))
    req = EditRequest(prompt="x", video=V, client_key="k-1")
    with pytest.raises(SubmitUncertainError) as exc:
        run(provider(host), lambda p: p.submit(req))
    assert exc.value.client_key == "k-1" and len(host.requests) == 1


def test_rate_limited_submit_is_not_retried() -> None:
    host = Host(uerr(429, "rate_limit_exceeded", "slow down", {"retry-after": "9"}))
    with pytest.raises(RateLimitedError) as exc:
        run(provider(host), lambda p: p.submit(REQ))
    assert exc.value.retry_after == 9.0 and len(host.requests) == 1


def test_status_400_without_a_task_document_is_an_error() -> None:
    host = Host(uerr(400, "generation_failed", "task generation failed"))
    with pytest.raises(ProviderError) as exc:
        run(provider(host), lambda p: p.status(p.resume("t1")))
    assert exc.value.code == "generation_failed" and not exc.value.retryable and exc.value.job_id == "t1"


def test_hand_typed_job_ids_stay_one_path_segment() -> None:
    host = Host(ok({"task_id": "a/b", "status": "processing"}))
    run(provider(host), lambda p: p.status(p.resume("a/b?x")))
    assert host.requests[0].url.raw_path == b"/v1/tasks/a%2Fb%3Fx"


def test_local_files_and_long_element_descriptions_are_refused_before_any_call() -> None:
    host = Host()
    p = provider(host)
    req = EditRequest(
        prompt="@Element1 in the rain",
        video="/tmp/clip.mp4",
        model="kling-o3",  # elements go through Kling 3.0 Omni; O1 Edit takes images only
        elements=[Element(V, [V], name="a-very-long-element-name", description="x" * 101)],
    )
    with pytest.raises(UnsupportedError) as exc:
        preflight(p, req)
    # Each problem once, each naming its field and the host's limit (names are not sent).
    assert sorted(pr.path for pr in exc.value.problems) == ["elements[0].description", "video"]
    assert "at most 100" in str(exc.value)
    assert host.requests == []


def test_callback_parser_is_on_the_provider_and_sends_nothing() -> None:
    host = Host()
    p = provider(host)
    st = p.parse_callback({"task_id": "t1", "status": "completed", "data": {"video_url": "https://cdn.unifically.com/o.mp4"}})
    assert isinstance(st, Succeeded) and st.job_id == "t1"
    assert st.result.video.url == "https://cdn.unifically.com/o.mp4"
    failed = p.parse_callback({"task_id": "t1", "status": "failed", "error_message": "Description"})
    assert isinstance(failed, Failed) and failed.error.message == "Description"
    assert host.requests == []


def test_no_key_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "kling_core"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    host = Host(
        ok({"task_id": "t1", "status": "pending"}),
        ok({"task_id": "t1", "status": "completed", "output": {"video_url": "https://cdn.unifically.com/o.mp4"}}),
        uerr(401, "authentication_failed", "Invalid API key"),
        httpx.ReadTimeout("lost"),
        ok({"valid": True}),
    )
    p = provider(host)
    texts = [repr(p), str(p), repr(vars(p))]

    async def go(p: UnificallyProvider) -> None:
        handle = await p.submit(REQ)
        texts.append(repr(await p.status(handle)))
        for call in (lambda: p.status(handle), lambda: p.submit(REQ)):
            try:
                await call()
            except ProviderError as exc:
                texts.extend([str(exc), repr(exc), repr(vars(exc))])
        texts.append(json.dumps(await p.dry_run(REQ)))

    run(p, go)
    assert len(host.requests) == 5
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert KEY not in "\n".join(texts)


def test_missing_key_is_named() -> None:
    with pytest.raises(MissingKeyError, match="UNIFICALLY_API_KEY"):
        UnificallyProvider(ProviderContext(name="unifically", environ={}))


def test_registered_through_the_entry_point() -> None:
    host = PluginHost(environ={"KLING_PLUGINS": "unifically"})
    assert host.provider_class("unifically") is UnificallyProvider


class Uploader:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def upload(self, path: Any, content_type: str) -> str:
        self.sent.append((path.name, content_type))
        return f"https://uploads.example.com/{path.name}"


def test_prepare_uploads_local_files_through_an_uploader_plugin(tmp_path: Any) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    up = Uploader()  # what the plugin host's kling_media_uploader hook hands the provider
    req = EditRequest(prompt="x", video=str(clip), images=[str(tmp_path / "a.png"), str(tmp_path / "a.png")])
    host = Host()
    prepared = run(provider(host, uploader=up), lambda p: p.prepare(req))
    assert prepared.video == "https://uploads.example.com/clip.mp4"
    assert prepared.images == ("https://uploads.example.com/a.png",) * 2
    assert up.sent == [("clip.mp4", "video/mp4"), ("a.png", "image/png")]
    assert host.requests == []  # the uploader's business, not a request to Unifically


def test_prepare_without_an_uploader_refuses_local_files() -> None:
    with pytest.raises(UnsupportedError, match="http\\(s\\) URLs only"):
        run(provider(Host()), lambda p: p.prepare(EditRequest(prompt="x", video="/tmp/clip.mp4")))
    assert run(provider(Host()), lambda p: p.prepare(REQ)) == REQ


def test_a_key_echoed_by_the_host_is_scrubbed_from_the_error() -> None:
    host = Host(uerr(401, "authentication_failed", f"Invalid API key {KEY}"))
    with pytest.raises(AuthenticationError) as exc:
        run(provider(host), lambda p: p.submit(REQ))
    assert KEY not in str(exc.value) and "Invalid API key" in str(exc.value)
