"""fal plugin through its public I/O surface: submit(), status() (status GET, then one result GET
once fal says COMPLETED), cancel(), over a mock transport. The wire tables are in test_fal_wire."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kling_core_plugins.fal import FalProvider

from kling_core.contract.models import EditRequest
from kling_core.contract.status import Failed, JobStatus, Queued, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    ProtocolError,
    ProviderError,
    ResultExpiredError,
    SubmitUncertainError,
)
from kling_core.provider import JobHandle
from kling_core.testing.replay import build_provider

KEY = f"sk-CANARY-{uuid.uuid4()}"
VIDEO = "https://v3b.fal.media/files/b/rabbit/in.mp4"
APP = "https://queue.fal.run/fal-ai/kling-video/requests"
REQ = EditRequest(prompt="x", video=VIDEO, client_key="ck-1")
Handler = Callable[[httpx.Request], httpx.Response]


class Host:
    """Answers by (method, path) from a script; every request is kept."""

    def __init__(self, routes: dict[tuple[str, str], list[httpx.Response]]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return httpx.Response(418, json={"detail": f"unexpected {request.method} {request.url}"})
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.method == method and r.url.path == path]


def make(host: Handler) -> FalProvider:
    async def no_sleep(seconds: float) -> None:
        return None

    p = build_provider(FalProvider, environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(host), sleep=no_sleep)
    assert isinstance(p, FalProvider)
    return p


def run(p: FalProvider, op: Callable[[FalProvider], Any]) -> Any:
    async def go() -> Any:
        try:
            return await op(p)
        finally:
            await p.aclose()

    return asyncio.run(go())


def handle(job_id: str = "r1") -> JobHandle:
    base = f"{APP}/{job_id}"
    return JobHandle(provider="fal", job_id=job_id, model="kling-o1", client_key="ck-1",
                     urls={"status": f"{base}/status", "response": base, "cancel": f"{base}/cancel"})


STATUS_PATH = "/fal-ai/kling-video/requests/r1/status"
RESULT_PATH = "/fal-ai/kling-video/requests/r1"
CANCEL_PATH = "/fal-ai/kling-video/requests/r1/cancel"
RESULT = {"video": {"url": "https://v3b.fal.media/files/out.mp4", "content_type": "video/mp4",
                    "file_name": "out.mp4", "file_size": 1234}}


def status_of(*answers: httpx.Response, result: httpx.Response | None = None) -> tuple[JobStatus | BaseException, Host]:
    routes = {("GET", STATUS_PATH): list(answers)}
    if result is not None:
        routes[("GET", RESULT_PATH)] = [result]
    host = Host(routes)
    try:
        return run(make(host), lambda p: p.status(handle())), host
    except ProviderError as exc:
        return exc, host


# -- submit -------------------------------------------------------------------------------


def test_submit_sends_once_with_the_key_and_keeps_fal_urls() -> None:
    answer = {"request_id": "r1", "status_url": f"{APP}/r1/status", "response_url": f"{APP}/r1",
              "cancel_url": f"{APP}/r1/cancel", "status": "IN_QUEUE", "queue_position": 0}
    host = Host({("POST", "/fal-ai/kling-video/o1/video-to-video/edit"): [httpx.Response(200, json=answer)]})
    h = run(make(host), lambda p: p.submit(REQ))
    assert len(host.seen) == 1
    sent = host.seen[0]
    assert sent.headers["authorization"] == f"Key {KEY}" and sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"prompt": "x", "video_url": VIDEO, "keep_audio": False}
    assert h.job_id == "r1" and h.client_key == "ck-1" and h.submitted_at is not None
    assert h.urls == {"status": f"{APP}/r1/status", "response": f"{APP}/r1", "cancel": f"{APP}/r1/cancel"}


def test_submit_refuses_status_urls_off_fal_before_polling_them() -> None:
    answer = {"request_id": "r1", "status_url": "https://evil.example/steal", "response_url": f"{APP}/r1",
              "cancel_url": f"{APP}/r1/cancel"}
    host = Host({("POST", "/fal-ai/kling-video/o1/video-to-video/edit"): [httpx.Response(200, json=answer)]})
    with pytest.raises(SubmitUncertainError) as info:  # fal took the job, but its answer is unusable
        run(make(host), lambda p: p.submit(REQ))
    assert "status_url" in str(info.value) and "not fal's API" in str(info.value)
    assert info.value.client_key == "ck-1" and len(host.seen) == 1


# -- status, then the result ---------------------------------------------------------------


def test_completed_triggers_exactly_one_result_get_on_the_response_url() -> None:
    status, host = status_of(
        httpx.Response(200, json={"status": "COMPLETED", "logs": [{"message": "done"}], "error": None, "error_type": None}),
        result=httpx.Response(200, json=RESULT),
    )
    assert isinstance(status, Succeeded)
    video = status.result.video
    assert (video.url, video.content_type, video.file_name, video.file_size) == (
        "https://v3b.fal.media/files/out.mp4", "video/mp4", "out.mp4", 1234)
    assert status.result.job_id == "r1" and status.result.provider == "fal" and status.result.model == "kling-o1"
    assert [(r.method, r.url.path) for r in host.seen] == [("GET", STATUS_PATH), ("GET", RESULT_PATH)]
    assert host.seen[0].url.params["logs"] == "1"  # logs are asked for
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in host.seen)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [({"status": "IN_QUEUE", "queue_position": 2}, Queued("r1", "fal", 2)),
     ({"status": "IN_PROGRESS", "logs": [{"message": "step 1"}]}, Running("r1", "fal", logs=("step 1",)))],
)
def test_unfinished_status_fetches_no_result(doc: dict[str, Any], expected: JobStatus) -> None:
    status, host = status_of(httpx.Response(200, json=doc), result=httpx.Response(200, json=RESULT))
    assert status == expected
    assert host.calls("GET", RESULT_PATH) == []


def test_completed_with_an_error_is_failed_even_with_a_video_at_the_result_url() -> None:
    # fal-client GETs response_url even when COMPLETED carries an error; so do we, and the job
    # stays failed whatever the result holds.
    status, host = status_of(
        httpx.Response(200, json={"status": "COMPLETED", "error": "runner died", "error_type": "runner_disconnected"}),
        result=httpx.Response(200, json=RESULT),
    )
    assert isinstance(status, Failed)
    assert (status.error.message, status.error.code, status.error.retryable, status.error.kind) == (
        "runner died", "runner_disconnected", True, "job_failed")
    assert len(host.calls("GET", RESULT_PATH)) == 1


@pytest.mark.parametrize(
    ("code", "doc", "message", "error_code", "kind"),
    [
        (422, {"detail": [{"loc": ["body", "video_url"], "msg": "video too long", "type": "video_duration_too_long"}]},
         "video_url: video too long", "video_duration_too_long", "validation"),
        (422, {"detail": [{"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}]},
         "prompt: flagged", "content_policy_violation", "content_policy"),
        (400, {"detail": "the model could not read the video"}, "the model could not read the video", None, "job_failed"),
        (400, {}, "the model rejected the input", None, "job_failed"),
    ],
)
def test_result_answered_with_a_model_error_is_a_failed_job(
    code: int, doc: dict[str, Any], message: str, error_code: str | None, kind: str,
) -> None:
    status, host = status_of(httpx.Response(200, json={"status": "COMPLETED"}), result=httpx.Response(code, json=doc))
    assert isinstance(status, Failed)
    assert (status.error.message, status.error.code, status.error.kind, status.error.retryable) == (
        message, error_code, kind, False)
    assert len(host.calls("GET", RESULT_PATH)) == 1  # a failed job: not retried


def test_result_retryable_hint_is_kept_on_the_failed_job() -> None:
    status, _ = status_of(httpx.Response(200, json={"status": "COMPLETED"}),
                          result=httpx.Response(422, json={"detail": "busy"}, headers={"x-fal-retryable": "true"}))
    assert isinstance(status, Failed) and status.error.retryable is True


@pytest.mark.parametrize("code", [404, 410])
def test_an_expired_result_says_so_and_nothing_is_resubmitted(code: int) -> None:
    status, host = status_of(httpx.Response(200, json={"status": "COMPLETED"}),
                             result=httpx.Response(code, json={"detail": "Request not found"}))
    assert isinstance(status, ResultExpiredError)
    assert status.status_code == code and status.job_id == "r1" and "fal no longer holds this result" in str(status)
    assert "not resubmitted" in str(status)
    assert [r.method for r in host.seen] == ["GET", "GET"]


def test_result_server_errors_are_retried_then_read() -> None:
    host = Host({("GET", STATUS_PATH): [httpx.Response(200, json={"status": "COMPLETED"})],
                 ("GET", RESULT_PATH): [httpx.Response(503, json={"detail": "busy"}), httpx.Response(200, json=RESULT)]})
    status = run(make(host), lambda p: p.status(handle()))
    assert isinstance(status, Succeeded)
    assert len(host.calls("GET", STATUS_PATH)) == 1 and len(host.calls("GET", RESULT_PATH)) == 2


def test_status_error_answer_is_mapped_not_parsed() -> None:
    status, host = status_of(httpx.Response(401, json={"detail": "Invalid key"}))
    assert isinstance(status, AuthenticationError) and status.status_code == 401 and "Invalid key" in str(status)
    assert len(host.seen) == 1


def test_a_resumed_job_follows_the_subpath_rule() -> None:
    host = Host({("GET", STATUS_PATH): [httpx.Response(200, json={"status": "COMPLETED"})],
                 ("GET", RESULT_PATH): [httpx.Response(200, json=RESULT)]})
    p = make(host)
    status = run(p, lambda p: p.status(p.resume("r1", model="kling-o3")))
    assert isinstance(status, Succeeded) and status.result.model == "kling-o3"
    assert [r.url.path for r in host.seen] == [STATUS_PATH, RESULT_PATH]  # owner/app only, never the o3 subpath


def test_a_job_id_with_slash_or_query_stays_one_path_segment() -> None:
    seen: list[httpx.Request] = []

    def host(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "IN_QUEUE"})

    status = run(make(host), lambda p: p.status(JobHandle(provider="fal", job_id="a/../b?c=1")))
    assert status == Queued("a/../b?c=1", "fal")
    (sent,) = seen
    assert sent.url.raw_path == b"/fal-ai/kling-video/requests/a%2F..%2Fb%3Fc%3D1/status?logs=1"
    assert dict(sent.url.params) == {"logs": "1"}


def test_a_journaled_url_off_fal_gets_no_key_and_no_request() -> None:
    host = Host({})
    tampered = JobHandle(provider="fal", job_id="r1", urls={"status": "https://evil.example/r1/status"})
    with pytest.raises(ProtocolError, match="refusing to send the fal credential"):
        run(make(host), lambda p: p.status(tampered))
    assert host.seen == []


# -- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"}), True),
     (httpx.Response(200, json={"status": "OK"}), True),
     (httpx.Response(400, json={"status": "ALREADY_COMPLETED"}), False)],
)
def test_cancel_answers(answer: httpx.Response, expected: bool) -> None:
    host = Host({("PUT", CANCEL_PATH): [answer]})
    assert run(make(host), lambda p: p.cancel(handle())) is expected
    (sent,) = host.seen
    assert sent.method == "PUT" and sent.headers["authorization"] == f"Key {KEY}"


@pytest.mark.parametrize(
    "answer", [httpx.Response(404, json={"status": "NOT_FOUND"}), httpx.Response(404, json={"detail": "nope"})],
)
def test_cancel_of_an_unknown_job_is_an_error(answer: httpx.Response) -> None:
    host = Host({("PUT", CANCEL_PATH): [answer]})
    with pytest.raises(ProviderError) as info:
        run(make(host), lambda p: p.cancel(handle()))
    assert info.value.code == "NOT_FOUND" and info.value.status_code == 404 and info.value.job_id == "r1"
    assert "fal does not know this job" in str(info.value)


def test_cancel_odd_answers() -> None:
    host = Host({("PUT", CANCEL_PATH): [httpx.Response(200, json={"status": "MAYBE"})]})
    with pytest.raises(ProtocolError, match="MAYBE"):
        run(make(host), lambda p: p.cancel(handle()))
    host = Host({("PUT", CANCEL_PATH): [httpx.Response(401, json={"detail": "Invalid key"})]})
    with pytest.raises(AuthenticationError):
        run(make(host), lambda p: p.cancel(handle()))
    assert len(host.seen) == 1
