"""Unifically's request builder, and its spec read through the provider's pure parsers.

The request body comes from ``wire.build_task``; every answer is read by the provider's
``parse_submit`` / ``parse_status`` / ``parse_callback`` / ``error_in_body`` / ``map_error``
(the spec tables in ``wire`` interpreted by ``HttpProvider``). No request is sent here.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import pytest
from kling_core_plugins.unifically import UnificallyProvider, wire

from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Completed, Failed, JobStatus, Queued, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    UnsupportedError,
)
from kling_core.preflight import check_request
from kling_core.provider import ProviderContext

V = "https://media.example.com/src.mp4"
API = "https://api.unifically.com/v1/tasks"


def img(n: int) -> str:
    return f"https://media.example.com/img{n}.png"


def el(name: str | None = None, description: str | None = None, refs: int = 1) -> Element:
    return Element(img(90), [img(91 + i) for i in range(refs)], name=name, description=description)


# --- request ---------------------------------------------------------------------------


def test_edit_sends_transform_keep_audio_and_mode_explicitly() -> None:
    body = wire.build_task(EditRequest(prompt="make it night", video=V))
    assert body == {
        "model": "kuaishou/kling-o1-video-edit",
        "input": {
            "video_url": V,
            "prompt": "make it night",
            "video_mode": "transform",
            "keep_audio": False,
            "mode": "pro",
        },
    }


def test_reference_mode_quality_aspect_and_callback() -> None:
    req = EditRequest(
        prompt="style of @Image1",
        video=V,
        images=[img(1)],
        edit_mode="reference",
        quality="std",
        keep_audio=True,
        aspect_ratio="9:16",
        webhook_url="https://hooks.example.com/u",
    )
    body = wire.build_task(req)
    assert body["callback_url"] == "https://hooks.example.com/u"
    assert "callback_url" not in body["input"]
    inp = body["input"]
    assert (inp["video_mode"], inp["mode"], inp["keep_audio"], inp["aspect_ratio"]) == ("reference", "std", True, "9:16")
    assert inp["image_urls"] == [img(1)]
    assert inp["prompt"] == "style of @image_1"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("@Image1 and @Element2", "@image_1 and @element_2"),
        ("<<<image_2>>> on @video1", "@image_2 on @video_1"),
        ("no refs at all", "no refs at all"),
    ],
)
def test_prompt_references_use_snake_spelling(given: str, sent: str) -> None:
    req = EditRequest(prompt=given, video=V, images=[img(1), img(2)])
    assert wire.build_input(req)["prompt"] == sent


def test_o3_elements_are_kling_3_element_inputs_with_all_images() -> None:
    req = EditRequest(
        prompt="x", video=V, model="kling-o3",
        elements=[el(refs=3), el(name="hero", description="the main actor", refs=2)],
    )
    elements = wire.build_input(req)["elements"]
    assert elements[0] == {"type": "image", "image_urls": [img(90), img(91), img(92), img(93)]}
    # The description when given; the name has no field on the host.
    assert elements[1] == {"type": "image", "image_urls": [img(90), img(91), img(92)], "description": "the main actor"}
    assert len(elements[0]["image_urls"]) <= wire.ELEMENT_IMAGES_MAX


def _refusal(req: EditRequest) -> list[str]:
    """The problems the core's own check (the client's and the contract suite's) reports."""
    with pytest.raises(UnsupportedError) as exc:
        check_request(UnificallyProvider(ProviderContext(name="unifically", environ={"UNIFICALLY_API_KEY": "k"})), req)
    return [p.path for p in exc.value.problems]


def test_too_long_element_description_fails_before_any_call() -> None:
    req = EditRequest(prompt="x", video=V, model="kling-o3", elements=[el(name="a" * 16, description="d" * 101)])
    assert _refusal(req) == ["elements[0].description"]


def test_images_and_elements_share_a_pool_of_four() -> None:
    req = EditRequest(prompt="x", video=V, model="kling-o3", images=[img(1), img(2), img(3)], elements=[el(), el()])
    assert "images" in _refusal(req)[0]


def test_o1_edit_takes_no_elements() -> None:
    assert _refusal(EditRequest(prompt="x", video=V, elements=[el()])) == ["elements"]


def test_dry_run_flag() -> None:
    assert wire.build_task(EditRequest(prompt="x", video=V), dry_run=True)["dry_run"] is True


# --- the provider's parsers ----------------------------------------------------------


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected here: {request.method} {request.url}")


def provider() -> UnificallyProvider:
    ctx = ProviderContext(name="unifically", environ={"UNIFICALLY_API_KEY": "sk-CANARY-wire"},
                          transport=httpx.MockTransport(_refuse))
    return UnificallyProvider(ctx)


def answer(status: int, body: Any = None, *, text: str | None = None, method: str = "GET",
           headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request(method, f"{API}/t1")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def parse(body: Any, *, status: int = 200, submitted_at: float | None = None) -> Any:
    p = provider()
    handle = attrs.evolve(p.resume("t1"), submitted_at=submitted_at)
    return p.parse_status(answer(status, body), handle)


def test_the_provider_sends_the_wire_body() -> None:
    req = EditRequest(prompt="x @Image1", video=V, images=[img(1)], webhook_url="https://hooks.example.com/u")
    p = provider()
    built = p.build_submit(req)
    assert (built.method, str(built.url)) == ("POST", API)
    assert json.loads(built.content) == wire.build_task(req)
    dry = p.build_dry_run(req)
    assert (dry.method, str(dry.url)) == ("POST", API)
    assert json.loads(dry.content) == wire.build_task(req, dry_run=True)


# --- statuses --------------------------------------------------------------------------


def poll(data: dict[str, object]) -> dict[str, object]:
    return {"code": 200, "success": True, "data": {"task_id": "t1", **data}}


@pytest.mark.parametrize(
    ("status", "state", "cls"), [("pending", "queued", Queued), ("processing", "running", Running)]
)
def test_non_terminal_statuses(status: str, state: str, cls: type[JobStatus]) -> None:
    st = parse(poll({"status": status}))
    assert isinstance(st, cls)
    assert st.state == state and st.job_id == "t1" and st.provider == "unifically"


def test_completed_carries_the_video_url() -> None:
    st = parse(
        poll({"status": "completed", "output": {"video_url": "https://cdn.unifically.com/outputs/a.mp4"}}),
        submitted_at=100.0,
    )
    assert isinstance(st, Succeeded) and st.state == "succeeded"
    assert st.result.video.url == "https://cdn.unifically.com/outputs/a.mp4"
    assert st.result.timings.submitted_at == 100.0
    assert st.result.model == "kling-o1" and st.result.job_id == "t1" and st.result.cost is None


FAILURES = [
    ({"error": {"message": "face not found", "code": "generation_failed"}}, "face not found", "generation_failed", "job_failed"),
    ({"error": {"message": "bad fps", "code": "validation_error"}}, "bad fps", "validation_error", "validation"),
    ({"error_message": "Description of what went wrong"}, "Description of what went wrong", None, "job_failed"),
    ({"error": "plain text reason"}, "plain text reason", None, "job_failed"),
    ({}, "the host reported the task as failed", None, "job_failed"),
]


@pytest.mark.parametrize(("data", "message", "code", "kind"), FAILURES)
def test_failed_parses_both_error_shapes(data: dict[str, object], message: str, code: str | None, kind: str) -> None:
    st = parse(poll({"status": "failed", **data}))
    assert isinstance(st, Failed) and st.state == "failed"
    assert (st.error.message, st.error.code, st.error.kind) == (message, code, kind)
    assert not st.error.retryable


@pytest.mark.parametrize(("data", "message", "code", "kind"), FAILURES)
def test_a_failed_task_answered_with_http_400_is_still_a_failed_status(
    data: dict[str, object], message: str, code: str | None, kind: str
) -> None:
    st = parse({"code": 400, "success": False, "data": {"task_id": "t1", "status": "failed", **data}}, status=400)
    assert isinstance(st, Failed)
    assert (st.error.message, st.error.code, st.error.kind) == (message, code, kind)


def test_a_400_without_a_failed_task_is_an_error_not_a_status() -> None:
    with pytest.raises(ProviderError) as exc:
        parse({"code": 400, "data": {"message": "task generation failed", "code": "generation_failed"}}, status=400)
    assert exc.value.code == "generation_failed" and exc.value.status_code == 400 and exc.value.job_id == "t1"
    assert not exc.value.retryable and "task generation failed" in str(exc.value)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"code": 200},
        {"data": "x"},
        poll({"status": "exploded"}),
        poll({"status": "completed"}),
        poll({"status": "completed", "output": {"video_url": "ftp://x/y.mp4"}}),
        poll({"status": 3}),
    ],
)
def test_bad_shapes_are_protocol_errors(body: object) -> None:
    p = provider()
    with pytest.raises(ProtocolError) as exc:
        if body is None:
            p.parse_status(answer(200, text="<not json>"), p.resume("t1"))
        else:
            parse(body)
    assert exc.value.job_id == "t1"


def test_completed_is_never_left_for_a_result_fetch() -> None:
    # Unifically has no result route: the status document must carry the video.
    assert wire.SPEC.routes.result is None
    assert not isinstance(parse(poll({"status": "processing"})), Completed)


def test_submit_task_id() -> None:
    p = provider()
    req = EditRequest(prompt="x", video=V, client_key="k-1")
    body = {"code": 200, "success": True, "data": {"task_id": "abc", "status": "pending"}}
    handle = p.parse_submit(answer(200, body, method="POST"), req)
    assert (handle.job_id, handle.provider, handle.model, handle.client_key) == ("abc", "unifically", "kling-o1", "k-1")
    bad: object
    for bad in ({"data": {}}, {"data": {"task_id": ""}}, {"data": {"task_id": 5}}, "x"):
        with pytest.raises(ProtocolError):
            p.parse_submit(answer(200, bad, method="POST"), req)


# --- callbacks -------------------------------------------------------------------------


def test_callback_success_uses_data_video_url() -> None:
    st = provider().parse_callback(
        {"task_id": "abc", "status": "completed", "data": {"video_url": "https://cdn.unifically.com/o.mp4"}}
    )
    assert isinstance(st, Succeeded) and st.state == "succeeded" and st.job_id == "abc"
    assert st.result.video.url == "https://cdn.unifically.com/o.mp4"
    assert st.result.provider == "unifically" and st.result.job_id == "abc"


def test_callback_failure_uses_error_message() -> None:
    st = provider().parse_callback({"task_id": "abc", "status": "failed", "error_message": "Description"})
    assert isinstance(st, Failed) and st.state == "failed" and st.error.message == "Description"


@pytest.mark.parametrize(("data", "message", "code", "kind"), FAILURES)
def test_callback_failure_reads_the_same_shapes_as_a_poll(
    data: dict[str, object], message: str, code: str | None, kind: str
) -> None:
    st = provider().parse_callback({"task_id": "abc", "status": "failed", **data})
    assert isinstance(st, Failed)
    assert (st.error.message, st.error.code, st.error.kind) == (message, code, kind)


@pytest.mark.parametrize(("status", "state"), [("pending", "queued"), ("processing", "running")])
def test_callback_non_terminal(status: str, state: str) -> None:
    assert provider().parse_callback({"task_id": "abc", "status": status}).state == state


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "completed"},
        {"task_id": "a", "status": "completed"},
        # the poll's spelling is not a callback's: the video is at data.video_url there
        {"task_id": "a", "status": "completed", "output": {"video_url": "https://cdn.unifically.com/o.mp4"}},
        {"task_id": "a", "status": "weird"},
        3,
        [],
    ],
)
def test_bad_callbacks(body: object) -> None:
    with pytest.raises(ProtocolError):
        provider().parse_callback(body)


# --- errors ----------------------------------------------------------------------------


def err(code: str, message: str = "m", number: int = 0) -> dict[str, object]:
    return {"code": number, "data": {"message": message, "code": code}}


@pytest.mark.parametrize(
    ("status", "code", "cls", "retryable"),
    [
        (401, "authentication_failed", AuthenticationError, False),
        (422, "validation_error", ProviderValidationError, False),
        (429, "rate_limit_exceeded", RateLimitedError, True),
        (500, "internal_error", ProviderError, True),
        (400, "generation_failed", ProviderError, False),
        (402, None, InsufficientCreditsError, False),
        (503, None, ProviderError, True),
        (418, "weird", ProviderError, False),
    ],
)
def test_documented_error_table(status: int, code: str | None, cls: type[ProviderError], retryable: bool) -> None:
    body = err(code, "Missing required parameter: prompt", status) if code else {"message": "Missing required parameter: prompt"}
    e = provider().map_error(answer(status, body), job_id="t9")
    assert type(e) is cls
    assert e.retryable is retryable and e.status_code == status and e.job_id == "t9"
    assert e.code == code
    assert "Missing required parameter: prompt" in str(e)


def test_body_code_alone_is_not_trusted() -> None:
    p = provider()
    # A 500 whose body claims a validation error is still a (retryable) server error.
    e = p.map_error(answer(500, err("validation_error", "odd", 422)))
    assert type(e) is ProviderError and e.retryable
    # A 422 whose body claims an auth failure is a validation error by its status.
    e = p.map_error(answer(422, err("authentication_failed", "odd", 401)))
    assert type(e) is ProviderValidationError


def test_rate_limit_keeps_retry_after() -> None:
    e = provider().map_error(answer(429, err("rate_limit_exceeded", "slow down", 429), headers={"retry-after": "7"}))
    assert isinstance(e, RateLimitedError) and e.retry_after == 7.0


def test_validation_error_names_the_host_message_as_detail() -> None:
    e = provider().map_error(answer(422, err("validation_error", "Missing required parameter: prompt", 422)))
    assert isinstance(e, ProviderValidationError)
    assert [d.message for d in e.details] == ["Missing required parameter: prompt"]


def test_non_json_error_body() -> None:
    e = provider().map_error(answer(502, text="upstream connect error"))
    assert e.retryable and "upstream connect error" in str(e) and e.status_code == 502


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"code": 400, "data": {"error": {"message": "face not found", "code": "generation_failed"}}}, "face not found"),
        ({"code": 400, "data": {"error_message": "bad input"}}, "bad input"),
        ({"code": 400, "message": "top-level message"}, "top-level message"),
        ({"error": "bare error"}, "bare error"),
    ],
)
def test_error_messages_are_found_in_every_known_spelling(body: dict[str, object], message: str) -> None:
    assert message in str(provider().map_error(answer(400, body)))


# --- errors inside a 2xx answer: "success": false ---------------------------------------


def test_success_false_marks_a_2xx_as_an_error() -> None:
    p = provider()
    assert p.error_in_body(answer(200, {"code": 401, "success": False, "data": {"message": "bad key"}}))
    assert not p.error_in_body(answer(200, poll({"status": "pending"})))
    assert not p.error_in_body(answer(200, {"code": 200, "data": {"task_id": "t1"}}))  # no flag: a document


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
def test_success_false_is_mapped_by_the_bodys_numeric_code(
    number: int, code: str | None, cls: type[ProviderError], retryable: bool
) -> None:
    data = {"message": "host says no", **({"code": code} if code else {})}
    e = provider().map_error(answer(200, {"code": number, "success": False, "data": data}), job_id="t1")
    assert type(e) is cls and e.retryable is retryable
    assert e.status_code is None and e.code == code and e.job_id == "t1"
    assert "host says no" in str(e) and "HTTP 200" in str(e)
