"""fal plugin: the wire mapping, error reading and options, table-driven (no I/O but the
sent request, over a mock transport, where the credential is added)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from kling_core_plugins.fal import FalProvider
from kling_core_plugins.fal.endpoints import CAPABILITIES, ENDPOINTS

from kling_core.contract.checks import check_against
from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Completed, Queued, Running, Succeeded
from kling_core.errors import (
    ContentPolicyError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    SubmitUncertainError,
)
from kling_core.provider import ProviderContext
from kling_core.sdk import fal_style_edit_body

KEY = "sk-CANARY-fal-wire-0000"
VIDEO = "https://v3b.fal.media/files/b/rabbit/in.mp4"


def provider(**options: Any) -> FalProvider:
    from kling_core.settings import ProviderSettings

    return FalProvider(ProviderContext(name="fal", environ={"FAL_KEY": KEY}, settings=ProviderSettings(options=options)))


def submit_answer(request_id: str = "r1") -> dict[str, str]:
    base = f"https://queue.fal.run/fal-ai/kling-video/requests/{request_id}"
    return {"request_id": request_id, "status_url": f"{base}/status", "response_url": base, "cancel_url": f"{base}/cancel"}


def sent_submit(req: EditRequest) -> httpx.Request:
    """The request fal receives for ``req`` (the credential is added at send time)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=submit_answer())

    p = FalProvider(ProviderContext(name="fal", environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(handler)))

    async def go() -> None:
        try:
            await p.submit(req)
        finally:
            await p.aclose()

    asyncio.run(go())
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(("key", "path"), sorted(ENDPOINTS.items()))
def test_every_endpoint_is_reachable_and_claimed(key: tuple[str, str, str], path: str) -> None:
    model, mode, quality = key
    req = EditRequest(prompt="x", video=VIDEO, model=model, edit_mode=mode, quality=quality)  # type: ignore[arg-type]
    assert check_against(req, CAPABILITIES, "fal") == []
    built = provider().build_submit(req)
    assert str(built.url) == f"https://queue.fal.run/{path}" and built.method == "POST"
    sent = sent_submit(req)
    assert str(sent.url) == f"https://queue.fal.run/{path}"
    assert sent.method == "POST" and sent.headers["authorization"] == f"Key {KEY}"


def test_o3_reference_is_claimed_and_edits_refuse_duration_and_aspect_ratio() -> None:
    req = EditRequest(prompt="x", video=VIDEO, model="kling-o3", edit_mode="reference")
    assert check_against(req, CAPABILITIES, "fal") == []
    edit = EditRequest(prompt="x", video=VIDEO, model="kling-o3", duration=5, aspect_ratio="9:16")
    assert sorted(p.path for p in check_against(edit, CAPABILITIES, "fal")) == ["aspect_ratio", "duration"]


@pytest.mark.parametrize("keep_audio", [False, True])
@pytest.mark.parametrize("model", ["kling-o1", "kling-o3"])
def test_keep_audio_is_always_explicit(model: str, keep_audio: bool) -> None:
    req = EditRequest(prompt="x", video=VIDEO, model=model, keep_audio=keep_audio)  # type: ignore[arg-type]
    expected = {"prompt": "x", "video_url": VIDEO, "keep_audio": keep_audio}
    assert fal_style_edit_body(req) == expected
    assert json.loads(provider().build_submit(req).content) == expected


def test_full_field_mapping_and_prompt_spelling() -> None:
    req = EditRequest(
        prompt="Put <<<element_1>>> in front of @image_2 and keep @video1",
        video=VIDEO,
        images=("https://a.example/1.png", "https://a.example/2.png"),
        elements=(Element("https://a.example/f.png", ("https://a.example/r1.png", "https://a.example/r2.png"), name="Bob"),),
    )
    expected = {
        "prompt": "Put @Element1 in front of @Image2 and keep @Video1",
        "video_url": VIDEO,
        "keep_audio": False,
        "image_urls": ["https://a.example/1.png", "https://a.example/2.png"],
        "elements": [{"frontal_image_url": "https://a.example/f.png",
                      "reference_image_urls": ["https://a.example/r1.png", "https://a.example/r2.png"]}],
    }
    assert fal_style_edit_body(req) == expected
    assert json.loads(provider().build_submit(req).content) == expected  # what fal receives, nothing added
    assert json.loads(sent_submit(req).content) == expected


def test_webhook_goes_in_the_query_and_options_in_headers() -> None:
    req = EditRequest(prompt="x", video=VIDEO, webhook_url="https://hooks.example.com/a?b=1",
                      options={"request_timeout": 30, "priority": "low"})
    p = provider()
    assert p.check(req) == []
    built = p.build_submit(req)
    assert built.url.params["fal_webhook"] == "https://hooks.example.com/a?b=1"
    assert built.headers["x-fal-request-timeout"] == "30" and built.headers["x-fal-queue-priority"] == "low"
    assert "fal_webhook" not in json.loads(built.content)


@pytest.mark.parametrize(
    ("options", "path"),
    [({"nope": 1}, "options.nope"), ({"request_timeout": 1}, "options.request_timeout"),
     ({"request_timeout": True}, "options.request_timeout"), ({"priority": "high"}, "options.priority")],
)
def test_bad_options_are_named(options: dict[str, Any], path: str) -> None:
    problems = provider().check(EditRequest(prompt="x", video=VIDEO, options=options))
    assert [p.path for p in problems] == [path]


def test_resume_follows_the_subpath_rule() -> None:
    h = provider().resume("80e7/../x", model="kling-o3")
    assert h.urls["status"] == "https://queue.fal.run/fal-ai/kling-video/requests/80e7%2F..%2Fx/status"
    assert h.urls["response"].endswith("/requests/80e7%2F..%2Fx") and h.urls["cancel"].endswith("/cancel")
    assert "o3" not in h.urls["status"]
    h = provider().resume("a?b=1#c")
    assert h.urls["response"] == "https://queue.fal.run/fal-ai/kling-video/requests/a%3Fb%3D1%23c"
    assert h.urls["cancel"] == "https://queue.fal.run/fal-ai/kling-video/requests/a%3Fb%3D1%23c/cancel"


def resp(status: int, doc: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=doc, headers=headers, request=httpx.Request("GET", "https://queue.fal.run/x"))


@pytest.mark.parametrize(
    ("status", "doc", "headers", "cls", "code", "retryable"),
    [
        (422, {"detail": [{"loc": ["body", "video_url"], "msg": "too long", "type": "video_duration_too_long"}]}, {},
         ProviderValidationError, "video_duration_too_long", False),
        (422, {"detail": "Unprocessable"}, {"x-fal-retryable": "true"}, ProviderValidationError, None, True),
        (503, {"detail": "no runner", "error_type": "runner_scheduling_failure"}, {}, ProviderError, "runner_scheduling_failure", True),
        (504, {"detail": "timeout"}, {"x-fal-error-type": "request_timeout"}, ProviderError, "request_timeout", True),
        (504, {"detail": "timeout"}, {"x-fal-error-type": "request_timeout", "x-fal-retryable": "false"}, ProviderError, "request_timeout", False),
        (422, {"detail": [{"loc": ["body", "prompt"], "msg": "nsfw", "type": "content_policy_violation"}]}, {},
         ContentPolicyError, "content_policy_violation", False),
        (400, {"detail": "bad", "error_type": "bad_request"}, {}, ProviderValidationError, "bad_request", False),
        (500, ["not", "an", "object"], {}, ProviderError, None, True),
    ],
)
def test_error_mapping(status: int, doc: Any, headers: dict[str, str], cls: type, code: str | None, retryable: bool) -> None:
    err = provider().map_error(resp(status, doc, headers), job_id="j")
    assert type(err) is cls and err.code == code and err.retryable is retryable
    assert err.status_code == status and err.job_id == "j"


@pytest.mark.parametrize(
    ("status", "doc", "headers", "parts"),
    [
        (503, {"detail": "no runner", "error_type": "runner_scheduling_failure"}, {},
         ["fal could not schedule a runner", "no runner"]),
        (504, {"detail": "took too long"}, {"x-fal-error-type": "request_timeout"}, ["timed out", "took too long"]),
        (422, {"detail": [{"loc": ["body", "prompt"], "msg": "nsfw", "type": "content_policy_violation"}]}, {},
         ["content checker", "prompt: nsfw"]),
        (401, {"detail": "Invalid key"}, {}, ["Invalid key"]),
        (500, "<html>oops</html>", {"content-type": "text/html"}, ["server error"]),
    ],
)
def test_error_messages_name_the_meaning_and_what_fal_said(
    status: int, doc: Any, headers: dict[str, str], parts: list[str],
) -> None:
    response = httpx.Response(status, text=doc, headers=headers, request=httpx.Request("GET", "https://queue.fal.run/x")) \
        if isinstance(doc, str) else resp(status, doc, headers)
    text = str(provider().map_error(response, job_id="j"))
    assert all(part in text for part in parts), text
    assert "<html>" not in text


def test_detail_list_becomes_one_problem_per_field() -> None:
    doc = {"detail": [{"loc": ["body", "elements", 0, "frontal_image_url"], "msg": "image too small", "type": "image_too_small"},
                      {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}
    err = provider().map_error(resp(422, doc))
    assert [(p.path, p.message) for p in err.details] == [
        ("elements.0.frontal_image_url", "image too small"), ("prompt", "field required")]
    assert "elements.0.frontal_image_url: image too small" in str(err)


def test_status_documents_parse() -> None:
    p = provider()
    h = p.resume("r1", model="kling-o1")
    assert p.parse_status(resp(202, {"status": "IN_QUEUE", "queue_position": 3}), h) == Queued("r1", "fal", 3)
    assert p.parse_status(resp(202, {"status": "IN_QUEUE", "queue_position": -1}), h) == Queued("r1", "fal", None)
    running = p.parse_status(resp(202, {"status": "IN_PROGRESS", "logs": [{"message": "a"}, {"oops": 1}]}), h)
    assert isinstance(running, Running) and running.logs == ("a",)
    # COMPLETED with an error: done, and failed; the result GET still comes, for fal's detail.
    failed = p.parse_status(resp(200, {"status": "COMPLETED", "error": "boom", "error_type": "content_policy_violation"}), h)
    assert isinstance(failed, Completed) and failed.error is not None
    assert failed.error.kind == "content_policy" and failed.error.code == "content_policy_violation"
    assert failed.error.message == "boom" and failed.error.retryable is False
    timeout = p.parse_status(resp(200, {"status": "COMPLETED", "error": "slow", "error_type": "startup_timeout"}), h)
    assert isinstance(timeout, Completed) and timeout.error is not None
    assert timeout.error.kind == "timeout" and timeout.error.retryable is True
    done = p.parse_status(resp(200, {"status": "COMPLETED", "error": None, "error_type": None}), h)
    assert done == Completed("r1", "fal")  # finished; the result GET comes next
    ok = p.parse_result(resp(200, {"video": {"url": "https://v3b.fal.media/o.mp4", "file_size": 12}}), h)
    assert isinstance(ok, Succeeded) and ok.result.video.file_size == 12 and ok.result.model == "kling-o1"
    assert ok.result.video.url == "https://v3b.fal.media/o.mp4" and ok.result.video.content_type == "video/mp4"
    for size in (-1, True, "12", 2**64):  # a size fal cannot mean is dropped, not trusted
        odd = p.parse_result(resp(200, {"video": {"url": "https://v3b.fal.media/o.mp4", "file_size": size}}), h)
        assert isinstance(odd, Succeeded) and odd.result.video.file_size is None


def test_log_entries_that_are_not_fal_log_objects_are_dropped() -> None:
    p = provider()
    running = p.parse_status(resp(202, {"status": "IN_PROGRESS", "logs": [{"message": "a"}, {"oops": 1}, "x"]}),
                             p.resume("r1"))
    assert isinstance(running, Running) and running.logs == ("a",)


@pytest.mark.parametrize(
    "doc",
    [{"status": "FAILED"}, {"status": None}, {"video": {}}, {"video": {"url": ""}}, {}, [], "x", 3, None],
)
def test_bad_status_shapes_are_protocol_errors(doc: Any) -> None:
    p = provider()
    with pytest.raises(ProtocolError):
        p.parse_status(resp(200, doc), p.resume("r1"))


@pytest.mark.parametrize(
    "doc",
    [{"video": {}}, {"video": {"url": ""}}, {"video": "https://v3b.fal.media/o.mp4"}, {}, [], "x", 3, None],
)
def test_bad_result_shapes_are_protocol_errors(doc: Any) -> None:
    p = provider()
    with pytest.raises(ProtocolError):
        p.parse_result(resp(200, doc), p.resume("r1"))


@pytest.mark.parametrize(
    "doc",
    [
        {"request_id": "r"},
        {"request_id": "", "status_url": "https://queue.fal.run/a", "response_url": "https://queue.fal.run/a", "cancel_url": "https://queue.fal.run/a"},
        {"request_id": "r", "status_url": "https://evil.example/a", "response_url": "https://queue.fal.run/a", "cancel_url": "https://queue.fal.run/a"},
        {"request_id": "r", "status_url": "not a url", "response_url": "https://queue.fal.run/a", "cancel_url": "https://queue.fal.run/a"},
    ],
)
def test_submit_answers_without_usable_urls_are_refused(doc: Any) -> None:
    p = provider()
    with pytest.raises(ProtocolError):
        p.parse_submit(resp(200, doc), EditRequest(prompt="x", video=VIDEO))


def test_submit_answer_keeps_the_urls_fal_returned() -> None:
    answer = {**submit_answer("abc"), "status_url": "https://queue.falrun.com/fal-ai/kling-video/requests/abc/status"}
    h = provider().parse_submit(resp(200, answer), EditRequest(prompt="x", video=VIDEO, model="kling-o3"))
    assert h.job_id == "abc" and h.model == "kling-o3"
    assert h.urls == {"status": answer["status_url"], "response": answer["response_url"], "cancel": answer["cancel_url"]}


def test_an_unusable_2xx_submit_answer_is_uncertain() -> None:
    """The job probably exists: the caller is told so, and nothing is sent again."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"request_id": "r"})

    p = FalProvider(ProviderContext(name="fal", environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(handler)))
    with pytest.raises(SubmitUncertainError, match="status_url"):
        asyncio.run(p.submit(EditRequest(prompt="x", video=VIDEO, client_key="ck")))
    assert len(calls) == 1
