"""Kling's pure request builder, status parser and service-code table."""

from __future__ import annotations

import pytest
from kling_core_plugins.kling import wire

from kling_core.contract.models import EditRequest
from kling_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    InsufficientCreditsError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
)

V = "https://media.example.com/src.mp4"
I1 = "https://media.example.com/crown.png"


def test_edit_body() -> None:
    req = EditRequest(
        prompt="Put the crown from @Image1 on the girl in @Video1",
        video=V,
        images=[I1],
        keep_audio=True,
        webhook_url="https://hooks.example.com/k",
        client_key="job-123",
    )
    assert wire.build_task(req) == {
        "model_name": "kling-video-o1",
        "prompt": "Put the crown from <<<image_1>>> on the girl in <<<video_1>>>",
        "video_list": [{"video_url": V, "refer_type": "base", "keep_original_sound": "yes"}],
        "image_list": [{"image_url": I1}],
        "mode": "pro",
        "callback_url": "https://hooks.example.com/k",
        "external_task_id": "job-123",
    }


def test_reference_o3_std_without_optional_fields() -> None:
    body = wire.build_task(EditRequest(prompt="x", video=V, model="kling-o3", edit_mode="reference", quality="std"))
    assert body["model_name"] == "kling-v3-omni"
    assert body["video_list"][0] == {"video_url": V, "refer_type": "feature", "keep_original_sound": "no"}
    assert body["mode"] == "std"
    for absent in ("image_list", "callback_url", "external_task_id", "aspect_ratio", "duration", "sound"):
        assert absent not in body


def ok(data: dict[str, object]) -> dict[str, object]:
    return {"code": 0, "message": "SUCCEED", "request_id": "r1", "data": {"task_id": "867", **data}}


@pytest.mark.parametrize(("status", "state"), [("submitted", "queued"), ("processing", "running")])
def test_non_terminal(status: str, state: str) -> None:
    assert wire.parse_task(ok({"task_status": status}), job_id="867", model="kling-o1").state == state


def test_succeed_reads_url_duration_string_and_credits() -> None:
    st = wire.parse_task(
        ok(
            {
                "task_status": "succeed",
                "task_status_msg": "",
                "task_result": {"videos": [{"id": "v", "url": "https://cdn.klingai.com/o.mp4", "duration": "5.1"}]},
                "final_unit_deduction": "4",
                "created_at": 1722769557708,
                "updated_at": 1722769657708,
            }
        ),
        job_id="867",
        model="kling-o3",
    )
    assert st.state == "succeeded"
    r = st.result  # type: ignore[union-attr]
    assert r.video.url == "https://cdn.klingai.com/o.mp4" and r.model == "kling-o3"
    assert r.cost is not None and r.cost.credits == 4.0
    assert r.report == {"duration": 5.1}
    assert r.timings.submitted_at == pytest.approx(1722769557.708)
    assert r.timings.total_seconds == pytest.approx(100.0)


def test_failed_carries_task_status_msg() -> None:
    st = wire.parse_task(ok({"task_status": "failed", "task_status_msg": "risk control"}), job_id="867", model="kling-o1")
    assert st.state == "failed" and st.error.message == "risk control"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"code": 0},
        {"code": 1200, "data": {}},
        ok({"task_status": "done"}),
        ok({"task_status": "succeed", "task_result": {"videos": []}}),
        ok({"task_status": "succeed", "task_result": {"videos": [{"url": "javascript:x"}]}}),
    ],
)
def test_bad_shapes(body: object) -> None:
    with pytest.raises(ProtocolError):
        wire.parse_task(body, job_id="867", model="kling-o1")


def test_task_ids_numeric_or_string() -> None:
    assert wire.task_id_of({"task_id": 867283741759111202}, what="x") == "867283741759111202"
    assert wire.external_id_of({"task_info": {"external_task_id": "k1"}}) == "k1"
    assert wire.external_id_of({}) is None
    with pytest.raises(ProtocolError):
        wire.task_id_of({"task_id": None}, what="x")


# (HTTP status, service code, class, retryable) — providers.md §4.5
TABLE = [
    (401, 1000, AuthenticationError, False),
    (401, 1001, AuthenticationError, False),
    (401, 1002, AuthenticationError, False),
    (401, 1003, AuthenticationError, False),
    (401, 1004, AuthenticationError, False),
    (429, 1100, ProviderError, False),
    (429, 1101, InsufficientCreditsError, False),
    (429, 1102, InsufficientCreditsError, False),
    (403, 1103, AuthenticationError, False),
    (400, 1200, ProviderValidationError, False),
    (400, 1201, ProviderValidationError, False),
    (404, 1202, ProviderError, False),
    (404, 1203, ProviderError, False),
    (400, 1300, ContentPolicyError, False),
    (400, 1301, ContentPolicyError, False),
    (429, 1302, RateLimitedError, True),
    (429, 1303, RateLimitedError, True),
    (429, 1304, AuthenticationError, False),
    (500, 5000, ProviderError, True),
    (503, 5001, ProviderError, True),
    (504, 5002, ProviderError, True),
]


@pytest.mark.parametrize(("status", "code", "cls", "retryable"), TABLE)
def test_documented_code_table(status: int, code: int, cls: type[ProviderError], retryable: bool) -> None:
    e = wire.error_from(status, {"code": code, "message": "host says", "request_id": "req-1"}, job_id="j")
    assert type(e) is cls
    assert (e.retryable, e.status_code, e.code, e.job_id) == (retryable, status, str(code), "j")
    assert "host says" in str(e) and "req-1" in str(e)


def test_every_documented_code_is_in_the_table() -> None:
    assert sorted(wire.ERRORS.by_code) == sorted(str(c) for _, c, _, _ in TABLE)


def test_1102_is_credits_not_a_retry_even_on_429() -> None:
    e = wire.error_from(429, {"code": 1102, "message": "resource pack exhausted"})
    assert isinstance(e, InsufficientCreditsError) and not e.retryable


@pytest.mark.parametrize("code", [1003, 1004])
def test_clock_problems_say_so(code: int) -> None:
    e = wire.error_from(401, {"code": code, "message": "token not valid"})
    assert "system clock" in str(e)


def test_code_on_http_200_is_mapped_by_code() -> None:
    assert wire.is_error_body({"code": 1201, "message": "x"})
    assert not wire.is_error_body({"code": 0, "data": {}})
    e = wire.error_from(200, {"code": 1201, "message": "model_name invalid"})
    assert isinstance(e, ProviderValidationError) and e.status_code is None and "HTTP 200" in str(e)
    assert [d.message for d in e.details] == ["model_name invalid"]


def test_unknown_codes_fall_back_on_status_and_never_retry_a_bare_429() -> None:
    e = wire.error_from(429, {"code": 1999, "message": "?"})
    assert type(e) is ProviderError and not e.retryable
    e = wire.error_from(502, None, text="bad gateway")
    assert e.retryable and "bad gateway" in str(e)
    e = wire.error_from(401, {"message": "who are you"})
    assert isinstance(e, AuthenticationError)


def test_rate_limit_retry_after() -> None:
    e = wire.error_from(429, {"code": 1302, "message": "slow"}, retry_after=3.0)
    assert isinstance(e, RateLimitedError) and e.retry_after == 3.0


def test_callback_is_the_task_document() -> None:
    body = {
        "task_id": "867",
        "task_status": "succeed",
        "task_info": {"external_task_id": "k"},
        "task_result": {"videos": [{"id": "v", "url": "https://cdn.klingai.com/o.mp4", "duration": "5"}]},
        "final_unit_deduction": "4",
    }
    st = wire.parse_callback(body, model="kling-o3")
    assert st.state == "succeeded" and st.job_id == "867"
    assert st.result.model == "kling-o3"  # type: ignore[union-attr]
    assert wire.parse_callback({"task_id": "867", "task_status": "processing"}).state == "running"
    for bad in ([], {"task_status": "succeed"}, {"task_id": "1", "task_status": "weird"}):
        with pytest.raises(ProtocolError):
            wire.parse_callback(bad)
