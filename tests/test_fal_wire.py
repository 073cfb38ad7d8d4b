"""fal plugin: the wire mapping, error reading and options, table-driven (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kling_core_plugins.fal import FalProvider, wire
from kling_core_plugins.fal.endpoints import CAPABILITIES, ENDPOINTS

from kling_core.contract.checks import check_against
from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Failed, Queued, Running, Succeeded
from kling_core.errors import ContentPolicyError, ProtocolError, ProviderError, ProviderValidationError
from kling_core.provider import ProviderContext

KEY = "sk-CANARY-fal-wire-0000"
VIDEO = "https://v3b.fal.media/files/b/rabbit/in.mp4"


def provider(**options: Any) -> FalProvider:
    from kling_core.settings import ProviderSettings

    return FalProvider(ProviderContext(name="fal", environ={"FAL_KEY": KEY}, settings=ProviderSettings(options=options)))


@pytest.mark.parametrize(("key", "path"), sorted(ENDPOINTS.items()))
def test_every_endpoint_is_reachable_and_claimed(key: tuple[str, str, str], path: str) -> None:
    model, mode, quality = key
    req = EditRequest(prompt="x", video=VIDEO, model=model, edit_mode=mode, quality=quality)  # type: ignore[arg-type]
    assert check_against(req, CAPABILITIES, "fal") == []
    built = provider().build_submit(req)
    assert str(built.url) == f"https://queue.fal.run/{path}"
    assert built.method == "POST" and built.headers["authorization"] == f"Key {KEY}"


def test_o3_reference_is_not_claimed() -> None:
    req = EditRequest(prompt="x", video=VIDEO, model="kling-o3", edit_mode="reference")
    problems = check_against(req, CAPABILITIES, "fal")
    assert [p.path for p in problems] == ["edit_mode"]


@pytest.mark.parametrize("keep_audio", [False, True])
@pytest.mark.parametrize("model", ["kling-o1", "kling-o3"])
def test_keep_audio_is_always_explicit(model: str, keep_audio: bool) -> None:
    body = wire.submit_body(EditRequest(prompt="x", video=VIDEO, model=model, keep_audio=keep_audio))  # type: ignore[arg-type]
    assert body == {"prompt": "x", "video_url": VIDEO, "keep_audio": keep_audio}


def test_full_field_mapping_and_prompt_spelling() -> None:
    req = EditRequest(
        prompt="Put <<<element_1>>> in front of @image_2 and keep @video1",
        video=VIDEO,
        images=("https://a.example/1.png", "https://a.example/2.png"),
        elements=(Element("https://a.example/f.png", ("https://a.example/r1.png", "https://a.example/r2.png"), name="Bob"),),
    )
    body = wire.submit_body(req)
    assert body == {
        "prompt": "Put @Element1 in front of @Image2 and keep @Video1",
        "video_url": VIDEO,
        "keep_audio": False,
        "image_urls": ["https://a.example/1.png", "https://a.example/2.png"],
        "elements": [{"frontal_image_url": "https://a.example/f.png",
                      "reference_image_urls": ["https://a.example/r1.png", "https://a.example/r2.png"]}],
    }


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
    running = p.parse_status(resp(202, {"status": "IN_PROGRESS", "logs": [{"message": "a"}, {"oops": 1}, "x"]}), h)
    assert isinstance(running, Running) and running.logs == ("a",)
    failed = p.parse_status(resp(200, {"status": "COMPLETED", "error": "boom", "error_type": "content_policy_violation"}), h)
    assert isinstance(failed, Failed) and failed.error.kind == "content_policy" and failed.error.code == "content_policy_violation"
    done = p.parse_status(resp(200, {"status": "COMPLETED", "error": None, "error_type": None}), h)
    assert isinstance(done, Running) and done.progress == 100.0  # finished; the result GET comes next
    ok = p.parse_status(resp(200, {"video": {"url": "https://v3b.fal.media/o.mp4", "file_size": 12}}), h)
    assert isinstance(ok, Succeeded) and ok.result.video.file_size == 12 and ok.result.model == "kling-o1"


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
