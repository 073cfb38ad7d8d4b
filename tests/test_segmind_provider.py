"""Segmind plugin: field mapping, URL-only media, v1 bodies by content type, credits, errors."""

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

from kling_core import uploads
from kling_core.contract.checks import check_against
from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Failed, Queued, Running, Succeeded
from kling_core.errors import (
    InsufficientCreditsError,
    ProtocolError,
    ProviderValidationError,
    SubmitUncertainError,
    UnsupportedError,
)
from kling_core.provider import ProviderContext
from kling_core.settings import ProviderSettings
from kling_core.testing.replay import preflight

KEY = f"sk-CANARY-{uuid.uuid4()}"
VIDEO = "https://cdn.example.com/in.mp4"
V1 = "https://api.segmind.com/v1/kling-o1-video-to-video-edit"


def make(router: respx.Router | None = None, tmp: Path | None = None, **options: Any) -> SegmindProvider:
    transport = httpx.MockTransport(router.handler) if router is not None else None
    return SegmindProvider(ProviderContext(name="segmind", environ={"SEGMIND_API_KEY": KEY}, transport=transport,
                                           settings=ProviderSettings(options=options), work_dir=tmp))


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
    assert built.headers["x-api-key"] == KEY and "authorization" not in built.headers


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


def test_local_file_is_refused_before_any_request_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    req = EditRequest(prompt="x", video=str(clip))
    with pytest.raises(UnsupportedError) as info:
        preflight(make(), req)
    text = str(info.value)
    assert text.startswith("video: ") and "URL" in text and "segmind" in text

    # Even if the core's check were bypassed, prepare() refuses and says how to fix it.
    router = respx.Router()
    p = make(router)
    monkeypatch.setattr(uploads, "find_uploader", lambda provider: None)
    with pytest.raises(UnsupportedError) as info:
        asyncio.run(p.prepare(req))
    assert "kling_media_uploader" in str(info.value) and "URL" in str(info.value)
    assert not router.calls


def test_a_registered_uploader_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    img = tmp_path / "a.png"
    img.write_bytes(b"y")
    uploaded: list[tuple[str, str]] = []

    class Uploader:
        async def upload(self, path: Path, content_type: str) -> str:
            uploaded.append((path.name, content_type))
            return f"https://bucket.example.com/{path.name}"

    p = make()
    monkeypatch.setattr(uploads, "find_uploader", lambda provider: Uploader() if provider == "segmind" else None)
    out = asyncio.run(p.prepare(EditRequest(prompt="x", video=str(clip), images=(str(img), str(img)))))
    assert out.video == "https://bucket.example.com/clip.mp4"
    assert out.images == ("https://bucket.example.com/a.png",) * 2
    assert uploaded == [("clip.mp4", "video/mp4"), ("a.png", "image/png")]


def resp(status: int, doc: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=doc, headers=headers, request=httpx.Request("GET", "https://api.segmind.com/x"))


def test_status_and_result_documents() -> None:
    p = make()
    h = p.resume("r1", model="kling-o3")
    assert isinstance(p.parse_status(resp(200, {"status": "QUEUED"}), h), Queued)
    assert isinstance(p.parse_status(resp(200, {"status": "PROCESSING"}), h), Running)
    failed = p.parse_status(resp(422, {"status": "FAILED", "error": "Prompt is Mandatory"}), h)
    assert isinstance(failed, Failed) and failed.error.message == "Prompt is Mandatory"
    done = p.parse_status(resp(200, {"status": "COMPLETED", "output": "https://o.example/v.mp4"}, {"x-remaining-credits": "12.5"}), h)
    assert isinstance(done, Succeeded) and done.result.cost is not None and done.result.cost.remaining_credits == 12.5
    for output in (["https://o.example/v.mp4"], {"url": "https://o.example/v.mp4"}):
        got = p.parse_status(resp(200, {"status": "COMPLETED", "output": output}), h)
        assert isinstance(got, Succeeded) and got.result.video.url == "https://o.example/v.mp4"
    with pytest.raises(ProviderValidationError):
        p.parse_status(resp(422, {"detail": "bad"}), h)
    for doc in ({"status": "DONE"}, {}, [], "x"):
        with pytest.raises(ProtocolError):
            p.parse_status(resp(200, doc), h)


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


def test_rate_limit_reset_header_becomes_retry_after() -> None:
    p = SegmindProvider(ProviderContext(name="segmind", environ={"SEGMIND_API_KEY": KEY}, clock=lambda: 1_788_000_000.0))
    reset = "2026-08-29T10:40:30Z"  # 1_788_000_000 is 2026-08-29T10:40:00Z
    err = p.map_error(resp(429, {"error": "Rate limit exceeded"}, {"x-rate-limit-reset-at-utc": reset}))
    assert err.retry_after == pytest.approx(30.0)  # type: ignore[attr-defined]
    assert wire.reset_wait("garbage", 0.0) is None
