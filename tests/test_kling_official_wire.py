"""Kling's request builder, and its spec read through the provider's pure parsers.

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
from kling_core_plugins.kling import KlingProvider, wire

from kling_core.contract.models import EditRequest
from kling_core.contract.status import Completed, Failed, JobStatus, Queued, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    InsufficientCreditsError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
)
from kling_core.provider import JobHandle, ProviderContext

V = "https://media.example.com/src.mp4"
I1 = "https://media.example.com/crown.png"
API = "https://api-singapore.klingai.com/v1/videos/omni-video"


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


def test_the_provider_sends_the_wire_body() -> None:
    req = EditRequest(prompt="x @Image1", video=V, images=[I1], client_key="k-1")
    built = provider().build_submit(req)
    assert (built.method, str(built.url)) == ("POST", API)
    assert json.loads(built.content) == wire.build_task(req)


# --- the provider's parsers ----------------------------------------------------------


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected here: {request.method} {request.url}")


def provider() -> KlingProvider:
    ctx = ProviderContext(
        name="kling",
        environ={"KLING_ACCESS_KEY": "ak-CANARY-wire", "KLING_SECRET_KEY": "sk-CANARY-wire"},
        transport=httpx.MockTransport(_refuse),
    )
    return KlingProvider(ctx)


def answer(status: int, body: Any = None, *, text: str | None = None, method: str = "GET",
           headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request(method, f"{API}/867")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def handle(model: str = "kling-o1", submitted_at: float | None = None) -> JobHandle:
    return attrs.evolve(provider().resume("867", model=model), submitted_at=submitted_at)


def parse(body: Any, *, model: str = "kling-o1", status: int = 200) -> Any:
    return provider().parse_status(answer(status, body), handle(model))


def ok(data: dict[str, object]) -> dict[str, object]:
    return {"code": 0, "message": "SUCCEED", "request_id": "r1", "data": {"task_id": "867", **data}}


@pytest.mark.parametrize(("status", "cls"), [("submitted", Queued), ("processing", Running)])
def test_non_terminal(status: str, cls: type[JobStatus]) -> None:
    st = parse(ok({"task_status": status}))
    assert isinstance(st, cls) and st.job_id == "867" and st.provider == "kling"
    assert st.state == {"submitted": "queued", "processing": "running"}[status]


def test_succeed_reads_url_duration_string_and_credits() -> None:
    st = parse(
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
        model="kling-o3",
    )
    assert isinstance(st, Succeeded) and st.state == "succeeded"
    r = st.result
    assert r.video.url == "https://cdn.klingai.com/o.mp4" and r.model == "kling-o3"
    assert r.cost is not None and r.cost.credits == 4.0
    assert r.report == {"duration": 5.1}
    assert r.timings.submitted_at == pytest.approx(1722769557.708)
    assert r.timings.total_seconds == pytest.approx(100.0)


def test_succeed_keeps_the_handles_submit_time_over_created_at() -> None:
    body = ok({"task_status": "succeed", "created_at": 1722769557708, "updated_at": 1722769657708,
               "task_result": {"videos": [{"url": "https://cdn.klingai.com/o.mp4"}]}})
    st = provider().parse_status(answer(200, body), handle(submitted_at=1722769500.0))
    assert isinstance(st, Succeeded)
    assert st.result.timings.submitted_at == 1722769500.0
    assert st.result.timings.total_seconds == pytest.approx(157.708)


def test_failed_carries_task_status_msg() -> None:
    st = parse(ok({"task_status": "failed", "task_status_msg": "risk control"}))
    assert isinstance(st, Failed) and st.state == "failed"
    assert st.error.message == "risk control" and st.error.kind == "job_failed" and not st.error.retryable


def test_failed_without_a_message_says_the_host_failed_it() -> None:
    st = parse(ok({"task_status": "failed", "task_status_msg": ""}))
    assert isinstance(st, Failed) and st.error.message == "the host reported the task as failed"


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
    with pytest.raises(ProtocolError) as exc:
        if body is None:
            provider().parse_status(answer(200, text="not json"), handle())
        else:
            parse(body)
    assert exc.value.job_id == "867"


def test_a_succeed_without_a_video_is_never_left_for_a_result_fetch() -> None:
    # Kling has no result route: "completed" must carry the video or be a protocol error.
    with pytest.raises(ProtocolError):
        parse(ok({"task_status": "succeed"}))
    assert not isinstance(parse(ok({"task_status": "processing"})), Completed)


def test_task_ids_numeric_or_string() -> None:
    p = provider()
    req = EditRequest(prompt="x", video=V)
    h = p.parse_submit(answer(200, ok({"task_id": 867283741759111202, "task_info": {"external_task_id": "k1"}}),
                              method="POST"), req)
    assert h.job_id == "867283741759111202" and h.data["external_task_id"] == "k1"
    assert p.parse_submit(answer(200, ok({"task_id": "abc"}), method="POST"), req).job_id == "abc"
    h = p.parse_submit(answer(200, {"code": 0, "data": {"task_id": "9"}}, method="POST"), req)
    assert "external_task_id" not in h.data
    for bad in ({"task_id": None}, {"task_id": ""}, {"task_id": True}, {}):
        with pytest.raises(ProtocolError):
            p.parse_submit(answer(200, {"code": 0, "data": bad}, method="POST"), req)


# --- errors: the service code decides -------------------------------------------------

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
    e = provider().map_error(answer(status, {"code": code, "message": "host says", "request_id": "req-1"}), job_id="j")
    assert type(e) is cls
    assert (e.retryable, e.status_code, e.code, e.job_id) == (retryable, status, str(code), "j")
    assert "host says" in str(e) and "req-1" in str(e)
    # The table's meaning comes first, so a terse host message is still explained.
    assert wire.ERRORS.lookup(status, str(code)).message in str(e)  # type: ignore[operator]


@pytest.mark.parametrize(("status", "code", "cls", "retryable"), TABLE)
def test_the_code_decides_on_any_status(status: int, code: int, cls: type[ProviderError], retryable: bool) -> None:
    # The same code under another HTTP status (Kling's pairing is loose) means the same thing.
    other = 400 if status != 400 else 429
    e = provider().map_error(answer(other, {"code": code, "message": "m"}))
    assert type(e) is cls and e.retryable is retryable and e.status_code == other


def test_every_documented_code_is_in_the_table() -> None:
    assert sorted(wire.ERRORS.by_code) == sorted(str(c) for _, c, _, _ in TABLE)


def test_1102_is_credits_not_a_retry_even_on_429() -> None:
    e = provider().map_error(answer(429, {"code": 1102, "message": "resource pack exhausted"}))
    assert isinstance(e, InsufficientCreditsError) and not e.retryable
    assert "resource pack exhausted" in str(e)


@pytest.mark.parametrize("code", [1003, 1004])
def test_clock_problems_say_so(code: int) -> None:
    e = provider().map_error(answer(401, {"code": code, "message": "token not valid"}))
    assert "system clock" in str(e) and "token not valid" in str(e)



@pytest.mark.parametrize(
    ("code", "said"), [(1004, "token expired"), (1003, "Token not yet valid"), (1102, "resource pack depleted")]
)
def test_the_meaning_survives_a_host_message_it_contains(code: int, said: str) -> None:
    # A host message the table's meaning already contains must not replace the meaning (and its advice).
    status = 429 if code == 1102 else 401
    e = provider().map_error(answer(status, {"code": code, "message": said}))
    meaning = wire.ERRORS.lookup(status, str(code)).message
    assert meaning is not None and meaning in str(e)
    assert e.code == str(code) and e.status_code == status and not e.retryable
    if code in (1003, 1004):
        assert isinstance(e, AuthenticationError) and "system clock" in str(e)
    else:
        assert isinstance(e, InsufficientCreditsError) and "buy or renew" in str(e)


# --- errors inside an HTTP 200 answer, and odd error bodies ---------------------------


def test_a_nonzero_code_in_a_200_answer_is_an_error() -> None:
    p = provider()
    assert p.error_in_body(answer(200, {"code": 1200, "message": "bad param", "request_id": "r2", "data": None}))
    assert not p.error_in_body(answer(200, ok({"task_status": "processing"})))
    assert not p.error_in_body(answer(200, {"code": 0, "message": "SUCCEED", "data": {}}))


def test_an_error_in_a_200_answer_maps_by_its_code() -> None:
    body = {"code": 1200, "message": "bad param", "request_id": "r2", "data": None}
    e = provider().map_error(answer(200, body), job_id="867")
    assert type(e) is ProviderValidationError
    assert (e.status_code, e.code, e.retryable, e.job_id) == (None, "1200", False, "867")
    assert "invalid request parameters" in str(e) and "bad param" in str(e)
    assert "r2" in str(e) and "(in an HTTP 200 answer)" in str(e)


def test_a_rate_limit_code_in_a_200_answer_is_retryable() -> None:
    e = provider().map_error(answer(200, {"code": 1302, "message": "slow down"}))
    assert isinstance(e, RateLimitedError) and e.retryable and e.status_code is None and e.code == "1302"


def test_an_undocumented_code_on_429_is_not_retried() -> None:
    e = provider().map_error(answer(429, {"code": 1999, "message": "something new"}))
    assert type(e) is ProviderError
    assert (e.retryable, e.status_code, e.code) == (False, 429, "1999")
    assert "undocumented code" in str(e) and "something new" in str(e)


def test_an_unknown_code_on_500_is_retryable() -> None:
    e = provider().map_error(answer(500, {"code": 5999, "message": "oops"}))
    assert type(e) is ProviderError
    assert (e.retryable, e.status_code, e.code) == (True, 500, "5999")
    assert "oops" in str(e)


def test_retry_after_on_a_rate_limit_is_kept() -> None:
    e = provider().map_error(answer(429, {"code": 1302, "message": "too many"}, headers={"Retry-After": "7"}))
    assert isinstance(e, RateLimitedError) and e.retryable
    assert e.retry_after == pytest.approx(7.0) and e.code == "1302" and e.status_code == 429


def test_an_html_error_page_still_maps_by_status() -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    e = provider().map_error(answer(502, text=page, headers={"content-type": "text/html"}))
    assert type(e) is ProviderError
    assert (e.retryable, e.status_code, e.code) == (True, 502, None)
    assert "<html" not in str(e).lower() and "server error" in str(e)


def test_a_non_json_error_body_still_maps_by_status() -> None:
    e = provider().map_error(answer(401, text="unauthorized, go away", headers={"content-type": "text/plain"}))
    assert type(e) is AuthenticationError
    assert (e.retryable, e.status_code, e.code) == (False, 401, None)
    assert "unauthorized, go away" in str(e)
    assert not provider().error_in_body(answer(200, text="not json"))


# --- callbacks: the task document itself, not enveloped (providers.md §4) ---------------

CALLBACK: dict[str, Any] = {
    "task_id": "867283741759111202",
    "task_status": "succeed",
    "task_status_msg": "",
    "task_info": {"external_task_id": "job-123"},
    "created_at": 1722769557708,
    "updated_at": 1722769657708,
    "final_unit_deduction": "4",
    "task_result": {"videos": [{"id": "v1", "url": "https://cdn.klingai.com/cb.mp4", "duration": "5.1"}]},
}


def test_callback_succeed() -> None:
    st = provider().parse_callback(CALLBACK)
    assert isinstance(st, Succeeded) and st.job_id == "867283741759111202" and st.provider == "kling"
    r = st.result
    assert r.video.url == "https://cdn.klingai.com/cb.mp4"
    assert r.cost is not None and r.cost.credits == 4.0
    assert r.report == {"duration": 5.1}
    assert r.timings.submitted_at == pytest.approx(1722769557.708)
    assert r.timings.total_seconds == pytest.approx(100.0)


def test_callback_failed_carries_task_status_msg() -> None:
    body = {**CALLBACK, "task_status": "failed", "task_status_msg": "risk control", "task_result": {}}
    st = provider().parse_callback(body)
    assert isinstance(st, Failed) and st.job_id == CALLBACK["task_id"]
    assert st.error.message == "risk control" and st.error.kind == "job_failed" and not st.error.retryable


def test_callback_processing_is_running() -> None:
    body = {k: v for k, v in CALLBACK.items() if k not in ("task_result", "final_unit_deduction")}
    st = provider().parse_callback({**body, "task_status": "processing"})
    assert isinstance(st, Running) and st.state == "running" and st.job_id == CALLBACK["task_id"]


@pytest.mark.parametrize(
    "body",
    [
        [CALLBACK],
        "succeed",
        None,
        {k: v for k, v in CALLBACK.items() if k != "task_id"},
        {**CALLBACK, "task_id": ""},
        {**CALLBACK, "task_status": "done"},
        {**CALLBACK, "task_result": {"videos": []}},
        {k: v for k, v in CALLBACK.items() if k != "task_result"},
        # The enveloped poll answer is not a callback body.
        ok({k: v for k, v in CALLBACK.items() if k != "task_id"}),
    ],
)
def test_malformed_callbacks(body: object) -> None:
    with pytest.raises(ProtocolError):
        provider().parse_callback(body)

def test_callback_result_names_the_jobs_model() -> None:
    st = provider().parse_callback(CALLBACK, model="kling-o3")
    assert isinstance(st, Succeeded) and st.result.model == "kling-o3"
