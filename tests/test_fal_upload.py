"""fal plugin: local files are uploaded to fal storage in prepare(), streamed, then submitted."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from pathlib import Path
from typing import Any

import attrs
import httpx
import kling_core_plugins.fal
import pytest
import respx
from kling_core_plugins.fal import FalProvider, storage

from kling_core.contract.models import EditRequest, Element
from kling_core.errors import ProtocolError
from kling_core.provider import ProviderContext
from kling_core.settings import MediaSettings
from kling_core.testing.cassettes import load_cassette

replay_mod = importlib.import_module("kling_core.testing.replay")
CASSETTE = Path(kling_core_plugins.fal.__file__).parent / "cassettes" / "local-files" / "upload-local-video.json"
KEY = f"sk-CANARY-{uuid.uuid4()}"
TOKEN_URL = "https://rest.fal.ai/storage/auth/token"
TOKEN = {"token": "tok-0001", "token_type": "Bearer", "base_url": "https://v3.fal.media", "expires_at": "2026-09-01T11:00:00Z"}


def test_local_file_cassette_replays(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 4096)
    cassette = load_cassette(CASSETTE)
    cassette = attrs.evolve(cassette, request=attrs.evolve(cassette.request, video=str(clip)))
    outcome = replay_mod.replay(FalProvider, cassette, work_dir=tmp_path)
    assert outcome.failures == []
    upload = outcome.requests[1]
    assert upload.content == clip.read_bytes()  # the file itself went up, not a path or a JSON wrapper
    assert upload.headers["authorization"] == "Bearer storage-token-example-0001"
    assert not any(k.startswith("Key ") for k in upload.headers.values())  # the fal key stays on fal's API


def make(router: respx.Router, **media: Any) -> FalProvider:
    return FalProvider(ProviderContext(name="fal", environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(router.handler),
                                       media=MediaSettings(**media)))


async def _prepare(p: FalProvider, req: EditRequest) -> EditRequest:
    try:
        return await p.prepare(req)
    finally:
        await p.aclose()


def test_every_local_reference_is_uploaded_once(tmp_path: Path) -> None:
    video, img = tmp_path / "v.mov", tmp_path / "i.png"
    video.write_bytes(b"v" * 100)
    img.write_bytes(b"i" * 50)
    router = respx.Router()
    token = router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=TOKEN))
    names: list[str] = []

    def upload(request: httpx.Request) -> httpx.Response:
        names.append(request.headers["x-fal-file-name"])
        return httpx.Response(200, json={"access_url": f"https://v3.fal.media/files/{request.headers['x-fal-file-name']}"})

    up = router.post("https://v3.fal.media/files/upload").mock(side_effect=upload)
    req = EditRequest(prompt="x", video=str(video), images=(f"file://{img}", "https://a.example/remote.png"),
                      elements=(Element(str(img), (str(img),)),))
    out = asyncio.run(_prepare(make(router), req))
    assert token.call_count == 1 and up.call_count == 3  # v.mov, file://i.png, and the bare path i.png
    assert out.video == "https://v3.fal.media/files/v.mov"
    assert out.images == ("https://v3.fal.media/files/i.png", "https://a.example/remote.png")
    assert out.elements[0].frontal_image == "https://v3.fal.media/files/i.png"
    assert up.calls[0].request.headers["content-type"] == "video/quicktime"
    assert up.calls[0].request.headers["content-length"] == "100"
    assert token.calls[0].request.headers["authorization"] == f"Key {KEY}"


def test_nothing_local_means_no_request(tmp_path: Path) -> None:
    router = respx.Router()
    req = EditRequest(prompt="x", video="https://a.example/v.mp4")
    assert asyncio.run(_prepare(make(router), req)) is req


def test_multipart_above_the_threshold_streams_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "MULTIPART_THRESHOLD", 100)
    monkeypatch.setattr(storage, "PART_SIZE", 40)
    data = bytes(range(256)) * 1  # 256 bytes -> parts of 40: 7 parts
    video = tmp_path / "big.mp4"
    video.write_bytes(data)
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=TOKEN))
    router.post("https://v3.fal.media/files/upload/multipart").mock(
        return_value=httpx.Response(200, json={"access_url": "https://v3.fal.media/files/big.mp4", "uploadId": "up1"}))
    received: dict[int, bytes] = {}

    def part(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.rsplit("/", 1)[1])
        received[n] = request.content
        return httpx.Response(200, headers={"etag": f'"e{n}"'})

    router.put(url__regex=r"https://v3\.fal\.media/files/big\.mp4/multipart/up1/\d+").mock(side_effect=part)
    done = router.post("https://v3.fal.media/files/big.mp4/multipart/up1/complete").mock(
        return_value=httpx.Response(200, json={"access_url": "https://v3.fal.media/files/big.mp4"}))
    out = asyncio.run(_prepare(make(router), EditRequest(prompt="x", video=str(video))))
    assert out.video == "https://v3.fal.media/files/big.mp4"
    assert sorted(received) == list(range(1, 8))
    assert b"".join(received[n] for n in sorted(received)) == data
    import json

    parts = json.loads(done.calls[0].request.content)["parts"]
    assert parts == [{"partNumber": n, "etag": f'"e{n}"'} for n in range(1, 8)]


def test_storage_urls_from_the_host_are_checked(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"v")
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={**TOKEN, "base_url": "http://insecure.example"}))
    with pytest.raises(ProtocolError):
        asyncio.run(_prepare(make(router), EditRequest(prompt="x", video=str(video))))
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={"token_type": "Bearer"}))
    with pytest.raises(ProtocolError, match="token"):
        asyncio.run(_prepare(make(router), EditRequest(prompt="x", video=str(video))))


def test_upload_is_retried_with_the_whole_file(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"abc" * 1000)
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=TOKEN))
    up = router.post("https://v3.fal.media/files/upload").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"access_url": "https://v3.fal.media/files/v.mp4"})])
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    p = FalProvider(ProviderContext(name="fal", environ={"FAL_KEY": KEY}, transport=httpx.MockTransport(router.handler), sleep=sleep))
    asyncio.run(_prepare(p, EditRequest(prompt="x", video=str(video))))
    assert up.call_count == 2 and len(slept) == 1
    assert up.calls[1].request.content == video.read_bytes()


def test_a_file_name_a_header_cannot_carry_goes_percent_encoded(tmp_path: Path) -> None:
    video = tmp_path / "café clip.mp4"
    video.write_bytes(b"v" * 100)
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=TOKEN))
    up = router.post("https://v3.fal.media/files/upload").mock(
        return_value=httpx.Response(200, json={"access_url": "https://v3.fal.media/files/x/clip.mp4"}))
    out = asyncio.run(_prepare(make(router), EditRequest(prompt="x", video=str(video))))
    assert out.video == "https://v3.fal.media/files/x/clip.mp4"
    assert up.calls.last.request.headers["x-fal-file-name"] == "caf%C3%A9%20clip.mp4"


def test_a_local_file_that_is_not_media_is_refused_before_any_upload_or_claim(tmp_path: Path) -> None:
    from kling_core.client import AsyncEditClient
    from kling_core.config import config_from_document
    from kling_core.errors import ValidationError
    from kling_core.joblog import JobLog

    notes, image = tmp_path / "notes.mp4", tmp_path / "ref.png"
    notes.write_text("not a video\n")
    image.write_text("not an image either\n")
    router = respx.Router()  # no route: any request would fail the test
    journal = JobLog(tmp_path / "state")

    async def go() -> None:
        async with AsyncEditClient(provider="fal", config=config_from_document({}), environ={"FAL_KEY": KEY},
                                   journal=journal, transport=httpx.MockTransport(router.handler)) as client:
            await client.start(client.request(str(notes), "x", images=[str(image)]))

    with pytest.raises(ValidationError) as info:
        asyncio.run(go())
    assert [p.path for p in info.value.problems] == ["video", "images[0]"]
    assert router.calls.call_count == 0 and journal.list() == []
