"""Unifically's pure request builder, status/callback parsers and error table."""

from __future__ import annotations

import pytest
from kling_core_plugins.unifically import wire

from kling_core.contract.models import EditRequest, Element
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    UnsupportedError,
)

V = "https://media.example.com/src.mp4"


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
    req = EditRequest(prompt=given, video=V, images=[img(1), img(2)], elements=[el(), el()])
    assert wire.build_input(req)["prompt"] == sent


def test_elements_get_given_or_derived_names_and_all_images() -> None:
    req = EditRequest(
        prompt="x", video=V, elements=[el(refs=3), el(name="hero", description="the main actor", refs=2)]
    )
    elements = wire.build_input(req)["elements"]
    assert elements[0] == {
        "name": "element1",
        "description": "reference element 1",
        "image_urls": [img(90), img(91), img(92), img(93)],
    }
    assert elements[1]["name"] == "hero" and elements[1]["description"] == "the main actor"
    assert len(elements[1]["image_urls"]) == 3
    # Derived names stay valid for every index the pool allows.
    for i in range(wire.REFERENCE_POOL):
        assert len(wire.element_name(el(), i)) <= wire.ELEMENT_NAME_MAX
        assert len(wire.element_description(el(), i)) <= wire.ELEMENT_DESCRIPTION_MAX


def test_too_long_element_name_and_description_fail_before_any_call() -> None:
    req = EditRequest(prompt="x", video=V, elements=[el(name="a" * 16, description="d" * 101)])
    problems = wire.element_problems(req)
    assert [p.path for p in problems] == ["elements[0].name", "elements[0].description"]
    assert "16 characters, at most 15" in problems[0].message
    with pytest.raises(UnsupportedError) as exc:
        wire.build_task(req)
    assert "elements[0].name" in str(exc.value) and "unifically" in str(exc.value)


def test_images_and_elements_share_a_pool_of_four() -> None:
    req = EditRequest(prompt="x", video=V, images=[img(1), img(2), img(3)], elements=[el(), el()])
    assert [p.path for p in wire.element_problems(req)] == ["images"]
    ok = EditRequest(prompt="x", video=V, images=[img(1), img(2)], elements=[el(), el()])
    assert wire.element_problems(ok) == []


def test_o3_is_not_offered() -> None:
    with pytest.raises(UnsupportedError, match="model"):
        wire.build_task(EditRequest(prompt="x", video=V, model="kling-o3"))


def test_dry_run_flag() -> None:
    assert wire.build_task(EditRequest(prompt="x", video=V), dry_run=True)["dry_run"] is True


# --- statuses --------------------------------------------------------------------------


def poll(data: dict[str, object]) -> dict[str, object]:
    return {"code": 200, "success": True, "data": {"task_id": "t1", **data}}


@pytest.mark.parametrize(
    ("status", "state"), [("pending", "queued"), ("processing", "running")]
)
def test_non_terminal_statuses(status: str, state: str) -> None:
    st = wire.parse_task(poll({"status": status}), job_id="t1", model="kling-o1")
    assert st.state == state and st.job_id == "t1" and st.provider == "unifically"


def test_completed_carries_the_video_url() -> None:
    st = wire.parse_task(
        poll({"status": "completed", "output": {"video_url": "https://cdn.unifically.com/outputs/a.mp4"}}),
        job_id="t1",
        model="kling-o1",
        submitted_at=100.0,
    )
    assert st.state == "succeeded"
    assert st.result.video.url == "https://cdn.unifically.com/outputs/a.mp4"  # type: ignore[union-attr]
    assert st.result.timings.submitted_at == 100.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "message", "code", "kind"),
    [
        ({"error": {"message": "face not found", "code": "generation_failed"}}, "face not found", "generation_failed", "job_failed"),
        ({"error": {"message": "bad fps", "code": "validation_error"}}, "bad fps", "validation_error", "validation"),
        ({"error_message": "Description of what went wrong"}, "Description of what went wrong", None, "job_failed"),
        ({"error": "plain text reason"}, "plain text reason", None, "job_failed"),
        ({}, "the host reported the task as failed", None, "job_failed"),
    ],
)
def test_failed_parses_both_error_shapes(data: dict[str, object], message: str, code: str | None, kind: str) -> None:
    st = wire.parse_task(poll({"status": "failed", **data}), job_id="t1", model="kling-o1")
    assert st.state == "failed"
    assert (st.error.message, st.error.code, st.error.kind) == (message, code, kind)  # type: ignore[union-attr]


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
    with pytest.raises(ProtocolError):
        wire.parse_task(body, job_id="t1", model="kling-o1")


def test_submit_task_id() -> None:
    assert wire.parse_task_id({"code": 200, "success": True, "data": {"task_id": "abc", "status": "pending"}}) == "abc"
    for bad in ({"data": {}}, {"data": {"task_id": ""}}, {"data": {"task_id": 5}}, "x"):
        with pytest.raises(ProtocolError):
            wire.parse_task_id(bad)


def test_callback_success_uses_data_video_url() -> None:
    st = wire.parse_callback(
        {"task_id": "abc", "status": "completed", "data": {"video_url": "https://cdn.unifically.com/o.mp4"}}
    )
    assert st.state == "succeeded" and st.job_id == "abc"
    assert st.result.video.url == "https://cdn.unifically.com/o.mp4"  # type: ignore[union-attr]


def test_callback_failure_uses_error_message() -> None:
    st = wire.parse_callback({"task_id": "abc", "status": "failed", "error_message": "Description"})
    assert st.state == "failed" and st.error.message == "Description"  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [{}, {"status": "completed"}, {"task_id": "a", "status": "completed"}, 3])
def test_bad_callbacks(body: object) -> None:
    with pytest.raises(ProtocolError):
        wire.parse_callback(body)


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
    e = wire.error_from(status, body, job_id="t9")
    assert type(e) is cls
    assert e.retryable is retryable and e.status_code == status and e.job_id == "t9"
    assert "Missing required parameter: prompt" in str(e)


def test_body_code_alone_is_not_trusted() -> None:
    # A 500 whose body claims a validation error is still a (retryable) server error.
    e = wire.error_from(500, err("validation_error", "odd", 422))
    assert type(e) is ProviderError and e.retryable
    # A 422 whose body claims an auth failure is a validation error by its status.
    e = wire.error_from(422, err("authentication_failed", "odd", 401))
    assert type(e) is ProviderValidationError


def test_rate_limit_keeps_retry_after() -> None:
    e = wire.error_from(429, err("rate_limit_exceeded", "slow down", 429), retry_after=7.0)
    assert isinstance(e, RateLimitedError) and e.retry_after == 7.0


def test_validation_error_names_the_host_message_as_detail() -> None:
    e = wire.error_from(422, err("validation_error", "Missing required parameter: prompt", 422))
    assert isinstance(e, ProviderValidationError)
    assert [d.message for d in e.details] == ["Missing required parameter: prompt"]


def test_non_json_error_body() -> None:
    e = wire.error_from(502, None, text="upstream connect error")
    assert e.retryable and "upstream connect error" in str(e)
