"""Segmind plugin: field mapping, URL-only media, v2 status then one result GET, v1 bodies by
content type, credits, errors (rate-limit reset time), over a mock transport where I/O is involved."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from kling_core_plugins.segmind import SegmindProvider, wire

from kling_core.contract.checks import check_against
from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Completed, Failed, JobStatus, Queued, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ResultExpiredError,
    SubmitUncertainError,
    UnsupportedError,
)
from kling_core.provider import JobHandle, MediaUploader, ProviderContext
from kling_core.settings import PollSettings, ProviderSettings
from kling_core.testing.replay import preflight

KEY = f"sk-CANARY-{uuid.uuid4()}"
VIDEO = "https://cdn.example.com/in.mp4"
V1 = "https://api.segmind.com/v1/kling-o1-video-to-video-edit"


async def no_sleep(seconds: float) -> None:
    return None


def make(router: respx.Router | None = None, tmp: Path | None = None, *, uploader: MediaUploader | None = None,
         poll: PollSettings | None = None, clock: float | None = None, **options: Any) -> SegmindProvider:
    transport = httpx.MockTransport(router.handler) if router is not None else None
    extra: dict[str, Any] = {"clock": lambda: clock} if clock is not None else {}
    return SegmindProvider(ProviderContext(name="segmind", environ={"SEGMIND_API_KEY": KEY}, transport=transport,
                                           settings=ProviderSettings(options=options, poll=poll), work_dir=tmp,
                                           uploader=uploader, sleep=no_sleep, **extra))


def run(p: SegmindProvider, op: Any) -> Any:
    async def go() -> Any:
        try:
            return await op(p)
        finally:
            await p.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("req", "url", "body"),
    [
        (EditRequest(prompt="x", video=VIDEO), "https://api.segmind.com/v2/kling-o1-video-to-video-edit",
         {"prompt": "x", "video_url": VIDEO, "keep_audio": False}),
        (EditRequest(prompt="x @image1", video=VIDEO, model="kling-o3", quality="std", images=("https://i.example/1.png",)),
         "https://api.segmind.com/v2/kling-o3-video2video-edit",
         {"prompt": "x @Image1", "video_url": VIDEO, "keep_audio": False, "mode": "std", "image_urls": ["https://i.example/1.png"]}),
        (EditRequest(prompt="x", video=VIDEO, model="kling-o3", duration=10, aspect_ratio="9:16", keep_audio=True,
                     elements=(Element("https://i.example/f.png", ("https://i.example/r.png",)),)),
         "https://api.segmind.com/v2/kling-o3-video2video-edit",
         {"prompt": "x", "video_url": VIDEO, "keep_audio": True, "mode": "pro", "duration": "10", "aspect_ratio": "9:16",
          "elements": [{"frontal_image_url": "https://i.example/f.png", "reference_image_urls": ["https://i.example/r.png"]}]}),
        (EditRequest(prompt="x", video=VIDEO, model="kling-o3", edit_mode="reference"),
         "https://api.segmind.com/v2/kling-o3-video2video-reference",
         {"prompt": "x", "video_url": VIDEO, "keep_audio": False, "mode": "pro"}),
    ],
)
def test_submit_mapping(req: EditRequest, url: str, body: dict[str, Any]) -> None:
    p = make()
    assert check_against(req, p.capabilities, "segmind") == [] and p.check(req) == []
    built = p.build_submit(req)
    assert str(built.url) == url and json.loads(built.content) == body
    assert wire.submit_body(req) == body
    # What Segmind receives: the same, with the key in x-api-key and nowhere else.
    router = respx.Router()
    route = router.post(url).mock(return_value=httpx.Response(200, json={"request_id": "r1"}))
    handle = run(make(router), lambda p: p.submit(req))
    sent = route.calls[0].request
    assert route.call_count == 1 and str(sent.url) == url and json.loads(sent.content) == body
    assert sent.headers["x-api-key"] == KEY and "authorization" not in sent.headers
    assert KEY not in str(sent.url) and KEY.encode() not in sent.content
    assert handle.job_id == "r1"


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (EditRequest(prompt="x", video=VIDEO, quality="std"), "quality"),  # O1 has no quality switch on Segmind
        (EditRequest(prompt="x", video=VIDEO, edit_mode="reference"), "edit_mode"),
        (EditRequest(prompt="x", video=VIDEO, duration=5), "duration"),
        (EditRequest(prompt="x", video=VIDEO, webhook_url="https://h.example/x"), "webhook_url"),
    ],
)
def test_unservable_requests_are_named(req: EditRequest, field: str) -> None:
    assert [p.path for p in check_against(req, wire.CAPABILITIES, "segmind")] == [field]


def test_api_option_is_checked() -> None:
    p = make()
    assert p.check(EditRequest(prompt="x", video=VIDEO, options={"api": "v1"})) == []
    assert [x.path for x in p.check(EditRequest(prompt="x", video=VIDEO, options={"api": "v3"}))] == ["options.api"]
    assert [x.path for x in p.check(EditRequest(prompt="x", video=VIDEO, options={"mode": "x"}))] == ["options.mode"]
    assert str(make(api="v1").build_submit(EditRequest(prompt="x", video=VIDEO)).url) == V1


def test_local_file_is_refused_before_any_request_with_a_clear_message(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    req = EditRequest(prompt="x", video=str(clip))
    with pytest.raises(UnsupportedError) as info:
        preflight(make(), req)
    text = str(info.value)
    assert text.startswith("video: ") and "URL" in text and "segmind" in text

    # Even if the core's check were bypassed, prepare() refuses and says how to fix it.
    router = respx.Router()
    p = make(router)  # no uploader in the context: no plugin offers one
    with pytest.raises(UnsupportedError) as info:
        asyncio.run(p.prepare(req))
    assert "kling_media_uploader" in str(info.value) and "URL" in str(info.value)
    assert [x.path for x in info.value.problems] == ["video"]
    assert not router.calls


def test_a_registered_uploader_is_used(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    img = tmp_path / "a.png"
    img.write_bytes(b"y")
    uploaded: list[tuple[str, str]] = []

    class Uploader:
        async def upload(self, path: Path, content_type: str) -> str:
            uploaded.append((path.name, content_type))
            return f"https://bucket.example.com/{path.name}"

    router = respx.Router()
    p = make(router, uploader=Uploader())  # the client puts a kling_media_uploader plugin's uploader here
    out = asyncio.run(p.prepare(EditRequest(prompt="x", video=str(clip), images=(str(img), str(img)))))
    assert out.video == "https://bucket.example.com/clip.mp4"
    assert out.images == ("https://bucket.example.com/a.png",) * 2
    assert uploaded == [("clip.mp4", "video/mp4"), ("a.png", "image/png")]
    assert not router.calls  # the uploader did the uploading; nothing went to Segmind


def resp(status: int, doc: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=doc, headers=headers, request=httpx.Request("GET", "https://api.segmind.com/x"))


def test_status_and_result_documents() -> None:
    p = make()
    h = p.resume("r1", model="kling-o3")
    assert isinstance(p.parse_status(resp(200, {"status": "QUEUED"}), h), Queued)
    assert isinstance(p.parse_status(resp(200, {"status": "PROCESSING"}), h), Running)
    failed = p.parse_status(resp(422, {"status": "FAILED", "error": "Prompt is Mandatory"}), h)
    assert isinstance(failed, Failed) and failed.error.message == "Prompt is Mandatory" and failed.error.kind == "job_failed"
    failed = p.parse_status(resp(422, {"status": "FAILED"}), h)
    assert isinstance(failed, Failed) and failed.error.message == "the job failed on Segmind"
    done = p.parse_status(resp(200, {"status": "COMPLETED", "output": "https://o.example/v.mp4"}, {"x-remaining-credits": "12.5"}), h)
    assert isinstance(done, Succeeded) and done.result.cost is not None and done.result.cost.remaining_credits == 12.5
    assert done.result.model == "kling-o3" and done.result.video.content_type == "video/mp4"
    for output in (["https://o.example/v.mp4"], {"url": "https://o.example/v.mp4"}):
        got = p.parse_status(resp(200, {"status": "COMPLETED", "output": output}), h)
        assert isinstance(got, Succeeded) and got.result.video.url == "https://o.example/v.mp4"
    # COMPLETED without the output: the result is fetched from response_url next.
    assert p.parse_status(resp(200, {"status": "COMPLETED", "metrics": {}}), h) == Completed("r1", "segmind")
    with pytest.raises(ProviderValidationError):
        p.parse_status(resp(422, {"detail": "bad"}), h)
    bad: tuple[Any, ...] = ({"status": "DONE"}, {}, [], "x")
    for doc in bad:
        with pytest.raises(ProtocolError):
            p.parse_status(resp(200, doc), h)


def test_result_documents() -> None:
    p = make()
    h = p.resume("r1", model="kling-o1")
    for output in ("https://o.example/v.mp4", ["https://o.example/v.mp4"], {"url": "https://o.example/v.mp4"}):
        got = p.parse_result(resp(200, {"status": "COMPLETED", "output": output}, {"x-remaining-credits": "3"}), h)
        assert isinstance(got, Succeeded) and got.result.video.url == "https://o.example/v.mp4"
        assert got.result.cost is not None and got.result.cost.remaining_credits == 3.0
    # The credits seen at submit stand in when the result answer has none.
    kept = JobHandle(provider="segmind", job_id="r1", model="kling-o1", data={"remaining_credits": "7.5"})
    got = p.parse_result(resp(200, {"output": "https://o.example/v.mp4"}), kept)
    assert isinstance(got, Succeeded) and got.result.cost is not None and got.result.cost.remaining_credits == 7.5
    for raw in ("nan", "inf", "lots"):
        got = p.parse_result(resp(200, {"output": "https://o.example/v.mp4"}, {"x-remaining-credits": raw}), h)
        assert isinstance(got, Succeeded) and got.result.cost is None
    bad: tuple[Any, ...] = ({"status": "COMPLETED"}, {"output": ""}, {"output": []}, {}, [], "x")
    for doc in bad:
        with pytest.raises(ProtocolError):
            p.parse_result(resp(200, doc), h)


def test_failed_at_the_result_url_reads_like_failed_at_the_status_url() -> None:
    p = make()
    h = p.resume("r1")
    got = p.parse_result(resp(422, {"status": "FAILED", "error": "Prompt is Mandatory"}), h)
    assert isinstance(got, Failed)
    assert (got.error.message, got.error.kind, got.error.retryable) == ("Prompt is Mandatory", "job_failed", False)


STATUS_URL = "https://api.segmind.com/v2/requests/r1/status"
RESULT_URL = "https://api.segmind.com/v2/requests/r1"


def status_run(router: respx.Router, handle: JobHandle | None = None, **kw: Any) -> JobStatus:
    return run(make(router, **kw), lambda p: p.status(handle or p.resume("r1", model="kling-o1")))  # type: ignore[no-any-return]


def test_completed_triggers_exactly_one_result_get() -> None:
    router = respx.Router()
    status = router.get(STATUS_URL).mock(return_value=httpx.Response(200, json={"status": "COMPLETED", "metrics": {}}))
    result = router.get(RESULT_URL).mock(return_value=httpx.Response(
        200, json={"status": "COMPLETED", "output": "https://o.example/v.mp4"}, headers={"x-remaining-credits": "99"}))
    got = status_run(router)
    assert isinstance(got, Succeeded) and got.result.video.url == "https://o.example/v.mp4"
    assert got.result.cost is not None and got.result.cost.remaining_credits == 99.0
    assert status.call_count == 1 and result.call_count == 1
    assert result.calls[0].request.headers["x-api-key"] == KEY


@pytest.mark.parametrize(
    ("answer", "state"),
    [(httpx.Response(200, json={"status": "QUEUED"}), "queued"),
     (httpx.Response(200, json={"status": "PROCESSING"}), "running"),
     (httpx.Response(422, json={"status": "FAILED", "error": "Prompt is Mandatory"}), "failed"),
     (httpx.Response(200, json={"status": "COMPLETED", "output": "https://o.example/v.mp4"}), "succeeded")],
)
def test_other_statuses_fetch_no_result(answer: httpx.Response, state: str) -> None:
    router = respx.Router()
    router.get(STATUS_URL).mock(return_value=answer)
    result = router.get(RESULT_URL).mock(return_value=httpx.Response(200, json={"output": "https://o.example/x.mp4"}))
    assert status_run(router).state == state
    assert result.call_count == 0


def test_failed_at_the_result_url_is_a_failed_job() -> None:
    router = respx.Router()
    router.get(STATUS_URL).mock(return_value=httpx.Response(200, json={"status": "COMPLETED"}))
    result = router.get(RESULT_URL).mock(return_value=httpx.Response(422, json={"status": "FAILED", "error": "bad fps"}))
    got = status_run(router)
    assert isinstance(got, Failed) and got.error.message == "bad fps" and got.error.kind == "job_failed"
    assert result.call_count == 1


def test_unknown_or_expired_requests_are_not_resubmitted() -> None:
    router = respx.Router()
    router.get(STATUS_URL).mock(return_value=httpx.Response(404, json={"error": "Request not found"}))
    with pytest.raises(ResultExpiredError) as info:
        status_run(router)
    assert info.value.status_code == 404 and info.value.job_id == "r1" and "kept 1 hour" in str(info.value)
    router = respx.Router()
    router.get(STATUS_URL).mock(return_value=httpx.Response(200, json={"status": "COMPLETED"}))
    router.get(RESULT_URL).mock(return_value=httpx.Response(404, json={"error": "Request not found"}))
    with pytest.raises(ResultExpiredError) as info:
        status_run(router)
    assert "no longer holds this result" in str(info.value) and "not resubmitted" in str(info.value)
    assert all(c.request.method == "GET" for c in router.calls)


def test_status_urls_from_the_submit_answer_are_used() -> None:
    router = respx.Router()
    router.post("https://api.segmind.com/v2/kling-o1-video-to-video-edit").mock(return_value=httpx.Response(
        200, json={"request_id": "r1", "status": "QUEUED", "status_url": STATUS_URL + "?via=answer",
                   "response_url": RESULT_URL + "?via=answer"}, headers={"x-remaining-credits": "10"}))
    handle = run(make(router), lambda p: p.submit(EditRequest(prompt="x", video=VIDEO)))
    assert handle.urls == {"status": STATUS_URL + "?via=answer", "response": RESULT_URL + "?via=answer"}
    assert handle.data["remaining_credits"] == "10"
    router = respx.Router()
    router.post("https://api.segmind.com/v2/kling-o1-video-to-video-edit").mock(return_value=httpx.Response(
        200, json={"request_id": "r1", "status_url": "https://evil.example/r1/status"}))
    with pytest.raises(SubmitUncertainError, match="status_url"):
        run(make(router), lambda p: p.submit(EditRequest(prompt="x", video=VIDEO)))


def test_job_ids_are_quoted_as_one_path_segment() -> None:
    p = make()
    h = p.resume("a/../b?c=1#d")
    assert h.urls == {"status": "https://api.segmind.com/v2/requests/a%2F..%2Fb%3Fc%3D1%23d/status",
                      "response": "https://api.segmind.com/v2/requests/a%2F..%2Fb%3Fc%3D1%23d"}
    seen: list[httpx.Request] = []

    def host(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "QUEUED"})

    bare = JobHandle(provider="segmind", job_id="a/../b?c=1")  # no URLs kept: the route templates are used
    assert run(SegmindProvider(ProviderContext(name="segmind", environ={"SEGMIND_API_KEY": KEY},
                                               transport=httpx.MockTransport(host))),
               lambda p: p.status(bare)).state == "queued"
    assert [r.url.raw_path for r in seen] == [b"/v2/requests/a%2F..%2Fb%3Fc%3D1/status"]


@pytest.mark.parametrize(("raw", "value"), [("12", 12.0), ("0.5", 0.5), ("nan", None), ("inf", None), ("lots", None)])
def test_credits_header(raw: str, value: float | None) -> None:
    assert wire.credits({"x-remaining-credits": raw}) == value


def test_v1_raw_video_is_streamed_to_the_work_dir(tmp_path: Path) -> None:
    payload = b"\x00\x00\x00\x18ftypmp42" + bytes(300_000)
    router = respx.Router()
    router.post(V1).mock(return_value=httpx.Response(200, content=payload, headers={"content-type": "video/mp4"}))
    p = make(router, tmp_path, api="v1")

    async def go() -> Any:
        handle = await p.submit(EditRequest(prompt="x", video=VIDEO, client_key="ck-9"))
        status = await p.status(handle)
        await p.aclose()
        return handle, status

    handle, status = asyncio.run(go())
    assert handle.job_id == "ck-9" and handle.data["api"] == "v1"
    assert isinstance(status, Succeeded)
    saved = Path(status.result.video.url.removeprefix("file://"))
    assert saved.parent == tmp_path and saved.read_bytes() == payload
    assert status.result.video.file_size == len(payload)
    assert [x.name for x in tmp_path.iterdir() if x.name.endswith(".part")] == []
    # The answer is the video: asked for as sent, like every download (an encoded one is refused).
    assert router.calls.last.request.headers["accept-encoding"] == "identity"


def test_v1_cut_off_body_is_uncertain_not_resubmitted(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.post(V1).mock(return_value=httpx.Response(
        200, content=b"abc", headers={"content-type": "video/mp4", "content-length": "999"}))
    p = make(router, tmp_path, api="v1")
    with pytest.raises(SubmitUncertainError):
        asyncio.run(p.submit(EditRequest(prompt="x", video=VIDEO)))
    assert route.call_count == 1
    assert list(tmp_path.iterdir()) == []


def test_v1_error_and_json_bodies() -> None:
    router = respx.Router()
    router.post(V1).mock(side_effect=[
        httpx.Response(406, json={"error": "Not enough credits"}),
        httpx.Response(200, json={"status": "COMPLETED"}),
    ])
    p = make(router, api="v1")
    with pytest.raises(InsufficientCreditsError):
        asyncio.run(p.submit(EditRequest(prompt="x", video=VIDEO)))
    with pytest.raises(Exception, match="names no output video"):
        asyncio.run(p.submit(EditRequest(prompt="x", video=VIDEO)))


NOW = 1_788_000_000.0  # 2026-08-29T10:40:00Z


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"x-rate-limit-reset-at-utc": "2026-08-29T10:40:30Z"}, 30.0),
        ({"x-rate-limit-reset-at-utc": "2026-08-29T10:40:30+00:00"}, 30.0),
        ({"x-rate-limit-reset-at-utc": "2026-08-29T12:41:00+02:00"}, 60.0),
        ({"x-rate-limit-reset-at-utc": "2026-08-29T10:40:30"}, 30.0),  # no zone: it says UTC
        ({"x-rate-limit-reset-at-utc": "2026-08-29T10:39:00Z"}, 0.0),  # already past: no negative wait
        ({"x-rate-limit-reset-at-utc": "garbage"}, None),
        ({"x-rate-limit-reset-at-utc": ""}, None),
        ({}, None),
        ({"x-rate-limit-reset-at-utc": "2026-08-29T10:40:30Z", "retry-after": "5"}, 5.0),  # Retry-After wins
    ],
)
def test_rate_limit_reset_header_becomes_retry_after(headers: dict[str, str], wait: float | None) -> None:
    p = make(clock=NOW)
    err = p.map_error(resp(429, {"error": "Rate limit exceeded"}, headers))
    assert isinstance(err, RateLimitedError) and err.retryable and err.status_code == 429
    assert "Rate limit exceeded" in str(err)
    assert err.retry_after == (pytest.approx(wait) if wait is not None else None)


def test_rate_limited_status_call_reports_the_reset_wait() -> None:
    router = respx.Router()
    route = router.get(STATUS_URL).mock(return_value=httpx.Response(
        429, json={"error": "Rate limit exceeded"}, headers={"x-rate-limit-reset-at-utc": "2026-08-29T10:40:30Z"}))
    with pytest.raises(RateLimitedError) as info:
        status_run(router, poll=PollSettings(status_retries=1), clock=NOW)
    assert info.value.retry_after == pytest.approx(30.0) and info.value.job_id == "r1"
    assert route.call_count == 2  # one retry within the poll budget, then the caller decides when


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "meaning"),
    [(400, ProviderValidationError, False, "Segmind rejected the request"),
     (401, AuthenticationError, False, "SEGMIND_API_KEY"),
     (403, AuthenticationError, False, "lacks permission"),
     (404, ProviderError, False, "does not know this model or request"),
     (406, InsufficientCreditsError, False, "not enough Segmind credits"),
     (500, ProviderError, True, "Segmind server error"),
     (502, ProviderError, True, "Segmind gateway error"),
     (504, ProviderError, True, "Segmind timed out")],
)
def test_error_table(status: int, cls: type, retryable: bool, meaning: str) -> None:
    err = make().map_error(resp(status, {"error": "the host said so"}), job_id="j")
    assert type(err) is cls and err.retryable is retryable and err.status_code == status and err.job_id == "j"
    assert meaning in str(err) and "the host said so" in str(err)
