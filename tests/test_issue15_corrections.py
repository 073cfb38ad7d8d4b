"""Issue 15, corrections 1–7: each fails on the code before the fix.

1. Unifically O1 takes images only; O3 goes through Kling 3.0 Omni; ``options.video_mode``.
2. fal uploads as fal-client makes them; a COMPLETED with an error still has its result fetched.
3. fal reference endpoints (O3 too) with ``duration`` / ``aspect_ratio``.
4. Kling reference mode takes (and needs) ``aspect_ratio``, takes ``duration``.
5. Segmind O3 ``shot_type`` as an option.
6. Media URLs with spaces and parentheses, sent percent-encoded.
7. ``User-Agent: kling-core/<version>`` (plus a third-party plugin's name and version).
(The cassettes named in docs/providers.md replay the same through ``kling contract``.)
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx
from kling_core_plugins.fal import FalProvider, storage
from kling_core_plugins.kling import KlingProvider
from kling_core_plugins.segmind import SegmindProvider
from kling_core_plugins.unifically import UnificallyProvider

import kling_core
from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Completed, Failed, JobError
from kling_core.errors import UnsupportedError, ValidationError
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider
from kling_core.serialization import structure
from kling_core.testing.doubles import build_provider

V = "https://media.example.com/clips/src.mp4"
IMG = "https://media.example.com/refs/a.png"
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
ENV: dict[type[Provider], dict[str, str]] = {
    FalProvider: {"FAL_KEY": "sk-CANARY-fal-15"},
    KlingProvider: {"KLING_ACCESS_KEY": "ak-CANARY-15", "KLING_SECRET_KEY": "sk-CANARY-kling-15"},
    SegmindProvider: {"SEGMIND_API_KEY": "sk-CANARY-segmind-15"},
    UnificallyProvider: {"UNIFICALLY_API_KEY": "sk-CANARY-unifically-15"},
}


def make(cls: type[Provider], handler: Any = None, **kw: Any) -> Any:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.method} {request.url}")

    env = next(ENV[base] for base in cls.__mro__ if base in ENV)
    return build_provider(cls, environ=env, transport=httpx.MockTransport(handler or refuse), **kw)


def refusals(cls: type[Provider], request: EditRequest) -> dict[str, str]:
    with pytest.raises(UnsupportedError) as exc:
        check_request(make(cls), request, check_files=False)
    # Each message without the " (unsupported by provider 'x')" the error adds.
    return {p.path: p.message.split(" (unsupported by provider")[0] for p in exc.value.problems}


def body(cls: type[Provider], request: EditRequest) -> dict[str, Any]:
    provider = make(cls)
    check_request(provider, request, check_files=False)
    return json.loads(provider.build_submit(request).content)  # type: ignore[no-any-return]


def el(description: str | None = None) -> Element:
    return Element("https://media.example.com/refs/front.png", ["https://media.example.com/refs/side.png"],
                   description=description)


# --- 1. Unifically --------------------------------------------------------------------


def test_unifically_o1_refuses_elements_before_any_call() -> None:
    problems = refusals(UnificallyProvider, EditRequest(prompt="@Element1 walks", video=V, elements=[el()]))
    assert list(problems) == ["elements"]
    assert "images only" in problems["elements"] and "kling-o3" in problems["elements"]


def test_unifically_o3_is_kling_3_omni_with_elements_and_aspect_ratio_auto() -> None:
    sent = body(UnificallyProvider, EditRequest(prompt="Swap @Element1 into @Image1", video=V, model="kling-o3",
                                                images=[IMG], elements=[el("a red bike")], quality="std"))
    assert sent == {"model": "kuaishou/kling-3.0-omni-video", "input": {
        "video_url": V, "prompt": "Swap @Element1 into @Image1", "video_mode": "transform", "mode": "std",
        "aspect_ratio": "auto", "image_urls": [IMG],
        "elements": [{"type": "image", "description": "a red bike",
                      "image_urls": ["https://media.example.com/refs/front.png", "https://media.example.com/refs/side.png"]}]}}
    schema = json.loads((SCHEMAS / "providers" / "unifically-omni-task-request.schema.json").read_text())
    jsonschema.validate(sent, schema)
    ref = body(UnificallyProvider, EditRequest(prompt="x", video=V, model="kling-o3", edit_mode="reference", duration=8))
    assert (ref["input"]["video_mode"], ref["input"]["duration"]) == ("video_reference", 8)


def test_unifically_o3_limits() -> None:
    req = EditRequest(prompt="x", video=V, model="kling-o3", aspect_ratio="16:9", keep_audio=True, duration=5)
    problems = refusals(UnificallyProvider, req)
    assert set(problems) == {"aspect_ratio", "keep_audio", "duration"}
    assert "'16:9' is not accepted" in problems["aspect_ratio"] and "auto" in problems["aspect_ratio"]
    assert "transform edit follows the input" in problems["duration"]
    assert refusals(UnificallyProvider, EditRequest(prompt="x", video=V, model="kling-o3", aspect_ratio="auto",
                                                    options={"video_mode": "reference"})) == {
        "options.video_mode": "'reference' is not a kuaishou/kling-3.0-omni-video video_mode "
                              "(one of transform, video_reference)"}


def test_unifically_video_mode_option_sends_the_hosts_own_value() -> None:
    sent = body(UnificallyProvider, EditRequest(prompt="Transform into anime style", video=V,
                                                options={"video_mode": "reference"}))
    assert sent["input"]["video_mode"] == "reference"
    problems = refusals(UnificallyProvider, EditRequest(prompt="x", video=V, options={"video_mode": "video_reference",
                                                                                       "speed": 2}))
    assert set(problems) == {"options.video_mode", "options.speed"}


# --- 2. fal uploads and completed-with-error --------------------------------------------

TOKEN_URL = "https://rest.fal.ai/storage/auth/token"
# A token naming another upload host than fal-client's CDN_URL: single uploads ignore it.
TOKEN = {"token": "tok-15", "token_type": "Bearer", "base_url": "https://upload.fal-cdn.example",
         "expires_at": "2026-09-01T11:00:00Z"}


async def _prepare(p: FalProvider, req: EditRequest) -> EditRequest:
    try:
        return await p.prepare(req)
    finally:
        await p.aclose()


def test_fal_single_upload_goes_to_fal_clients_cdn_url(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"v" * 64)
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=TOKEN))
    up = router.post("https://v3.fal.media/files/upload").mock(
        return_value=httpx.Response(200, json={"access_url": "https://v3.fal.media/files/clip.mp4"}))
    out = asyncio.run(_prepare(make(FalProvider, router.handler), EditRequest(prompt="x", video=str(clip))))
    assert up.call_count == 1 and out.video == "https://v3.fal.media/files/clip.mp4"


def test_fal_multipart_parts_carry_the_mime_type_and_identity_encoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "MULTIPART_THRESHOLD", 100)
    monkeypatch.setattr(storage, "PART_SIZE", 64)
    clip = tmp_path / "big.mov"
    clip.write_bytes(b"m" * 200)
    base = TOKEN["base_url"]
    router = respx.Router()
    router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=TOKEN))
    start = router.post(f"{base}/files/upload/multipart").mock(
        return_value=httpx.Response(200, json={"access_url": f"{base}/files/big.mov", "uploadId": "u1"}))
    parts = router.put(url__regex=rf"{base}/files/big\.mov/multipart/u1/\d+").mock(
        side_effect=lambda r: httpx.Response(200, headers={"etag": f'"{r.url.path[-1]}"'}))
    router.post(f"{base}/files/big.mov/multipart/u1/complete").mock(return_value=httpx.Response(200, json={}))
    out = asyncio.run(_prepare(make(FalProvider, router.handler), EditRequest(prompt="x", video=str(clip))))
    assert out.video == f"{base}/files/big.mov" and start.call_count == 1 and parts.call_count == 4
    for call in parts.calls:
        assert call.request.headers["content-type"] == "video/quicktime"
        assert call.request.headers["accept-encoding"] == "identity"


def _fal_status(status_doc: dict[str, Any], result: httpx.Response) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=status_doc) if request.url.path.endswith("/status") else result

    p = make(FalProvider, handler)
    handle = p.resume("r15", model="kling-o1")

    async def go() -> Any:
        try:
            return await p.status(handle)
        finally:
            await p.aclose()

    return asyncio.run(go()), seen


def test_fal_completed_with_error_fetches_the_result_for_the_detail() -> None:
    status, seen = _fal_status(
        {"status": "COMPLETED", "error": "Invalid status code: 422", "error_type": None},
        httpx.Response(422, json={"detail": [{"loc": ["body", "elements"], "type": "value_error",
                                              "msg": "elementReferList: size must be between 1 and 3"}]}))
    assert seen == ["/fal-ai/kling-video/requests/r15/status", "/fal-ai/kling-video/requests/r15"]
    assert status == Failed("r15", "fal", JobError(
        message="Invalid status code: 422: elements: elementReferList: size must be between 1 and 3",
        code="value_error", retryable=False, kind="validation"))


def test_fal_completed_with_error_stays_failed_when_the_result_get_fails() -> None:
    status, seen = _fal_status({"status": "COMPLETED", "error": "runner died", "error_type": "runner_disconnected"},
                               httpx.Response(404, json={"detail": "Request not found"}))
    assert len(seen) == 2 and isinstance(status, Failed)
    assert (status.error.message, status.error.code, status.error.retryable) == ("runner died", "runner_disconnected", True)


def test_completed_carries_the_hosts_error_only_when_there_is_one() -> None:
    assert Completed("j", "fal").error is None
    p = make(FalProvider)
    h = JobHandle(provider="fal", job_id="j", urls={"response": "https://queue.fal.run/fal-ai/kling-video/requests/j"})
    got = p.parse_status(httpx.Response(200, json={"status": "COMPLETED", "error": "x", "error_type": "runner_server_error"},
                                        request=httpx.Request("GET", "https://queue.fal.run/s")), h)
    assert isinstance(got, Completed) and got.error is not None and got.error.code == "runner_server_error"


# --- 3. fal reference endpoints -----------------------------------------------------------


@pytest.mark.parametrize(("quality", "path"), [("pro", "o3/pro"), ("std", "o3/standard")])
def test_fal_o3_reference_endpoints(quality: str, path: str) -> None:
    req = EditRequest(prompt="x", video=V, model="kling-o3", edit_mode="reference", quality=quality,  # type: ignore[arg-type]
                      duration=10, aspect_ratio="9:16")
    p = make(FalProvider)
    check_request(p, req, check_files=False)
    built = p.build_submit(req)
    assert str(built.url) == f"https://queue.fal.run/fal-ai/kling-video/{path}/video-to-video/reference"
    assert json.loads(built.content)["duration"] == "10" and json.loads(built.content)["aspect_ratio"] == "9:16"


def test_fal_o1_reference_takes_duration_and_auto_aspect_ratio_the_edit_does_not() -> None:
    sent = body(FalProvider, EditRequest(prompt="x", video=V, edit_mode="reference", duration=5, aspect_ratio="auto"))
    assert (sent["duration"], sent["aspect_ratio"]) == ("5", "auto")
    schema = json.loads((SCHEMAS / "providers" / "fal-kling-video-to-video-request.schema.json").read_text())
    jsonschema.validate(sent, schema)
    edit = refusals(FalProvider, EditRequest(prompt="x", video=V, duration=5, aspect_ratio="16:9"))
    assert set(edit) == {"duration", "aspect_ratio"}
    assert "reference endpoint takes it" in edit["duration"]
    too_long = refusals(FalProvider, EditRequest(prompt="x", video=V, edit_mode="reference", duration=12))
    assert too_long == {"duration": "12 s is outside 3–10 s for kling-o1 reference mode"}


def test_the_request_schema_takes_auto() -> None:
    schema = json.loads((SCHEMAS / "edit-request.schema.json").read_text())
    doc = {"prompt": "x", "video": V, "edit_mode": "reference", "aspect_ratio": "auto"}
    jsonschema.validate(doc, schema)
    assert structure(doc, EditRequest).aspect_ratio == "auto"


# --- 4. Kling reference mode ---------------------------------------------------------------


def test_kling_reference_mode_needs_an_aspect_ratio_and_takes_a_duration() -> None:
    problems = refusals(KlingProvider, EditRequest(prompt="x", video=V, model="kling-o3", edit_mode="reference"))
    assert problems == {"aspect_ratio": "required by kling-o3 reference mode (one of 16:9, 9:16, 1:1)"}
    sent = body(KlingProvider, EditRequest(prompt="x", video=V, model="kling-o3", edit_mode="reference",
                                           aspect_ratio="1:1", duration=7))
    assert (sent["aspect_ratio"], sent["duration"], sent["video_list"][0]["refer_type"]) == ("1:1", "7", "feature")


def test_kling_base_edit_still_refuses_both() -> None:
    problems = refusals(KlingProvider, EditRequest(prompt="x", video=V, aspect_ratio="16:9", duration=5))
    assert problems["aspect_ratio"].startswith("not accepted by kling-o1 edits (Kling: not supported")
    assert set(problems) == {"aspect_ratio", "duration"}


# --- 5. Segmind shot_type -------------------------------------------------------------------


def test_segmind_o3_shot_type_option() -> None:
    sent = body(SegmindProvider, EditRequest(prompt="x", video=V, model="kling-o3", options={"shot_type": "customize"}))
    assert sent["shot_type"] == "customize" and "duration" not in sent and "aspect_ratio" not in sent
    assert set(refusals(SegmindProvider, EditRequest(prompt="x", video=V, options={"shot_type": "customize"}))) == {
        "options.shot_type"}
    assert set(refusals(SegmindProvider, EditRequest(prompt="x", video=V, model="kling-o3",
                                                     options={"shot_type": "wide"}))) == {"options.shot_type"}


# --- 6. URLs as the hosts write them ------------------------------------------------------

SEGMIND_EXAMPLE = ("https://segmind-inference-inputs.s3.amazonaws.com/c511b717-f9dd-4624-8b8d-8f5a0f688a5d-3044799-"
                   "hd_1280_720_24fps (1).mp4")


def test_a_url_with_a_space_and_parentheses_is_accepted_and_encoded() -> None:
    req = EditRequest(prompt="x", video=SEGMIND_EXAMPLE, images=["https://h.example/refs/my style (v2).png"],
                      elements=[Element("https://h.example/a b.png", ["https://h.example/ü.png"])])
    assert req.video == SEGMIND_EXAMPLE.replace(" ", "%20")
    assert req.images == ("https://h.example/refs/my%20style%20(v2).png",)
    assert req.elements[0].frontal_image == "https://h.example/a%20b.png"
    assert req.elements[0].reference_images == ("https://h.example/%C3%BC.png",)
    assert EditRequest(prompt="x", video=req.video).video == req.video  # already encoded: unchanged
    assert EditRequest(prompt="x", video="https://h.example/a%2Fb 100%.mp4").video == "https://h.example/a%2Fb%20100%25.mp4"
    sent = body(SegmindProvider, EditRequest(prompt="x", video=SEGMIND_EXAMPLE))
    assert sent["video_url"].endswith("hd_1280_720_24fps%20(1).mp4")
    jsonschema.validate({"prompt": "x", "video": SEGMIND_EXAMPLE}, json.loads((SCHEMAS / "edit-request.schema.json").read_text()))


@pytest.mark.parametrize("bad", ["https://h.example/a.mp4 ", " https://h.example/a.mp4", "https://", "https://h.example/a\nb"])
def test_a_broken_https_url_is_not_called_an_unsupported_scheme(bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        structure({"prompt": "x", "video": bad}, EditRequest)
    assert "not supported" not in str(exc.value) and "not a valid https URL" in str(exc.value)


# --- 7. User-Agent ----------------------------------------------------------------------------


def test_every_request_names_kling_core_and_its_version() -> None:
    agent = f"kling-core/{kling_core.__version__}"
    for cls in (FalProvider, KlingProvider, SegmindProvider, UnificallyProvider):
        built = make(cls).build_submit(EditRequest(prompt="x", video=V))
        assert built.headers["user-agent"] == agent, cls.name
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("user-agent", ""))
        return httpx.Response(200, json={"status": "IN_QUEUE", "queue_position": 0})

    p = make(FalProvider, handler)
    asyncio.run(p.status(p.resume("r1")))
    assert seen == [agent]


def test_a_third_party_plugin_adds_its_distribution_and_version() -> None:
    from kling_core.http.base import user_agent

    # A provider class from an installed distribution's package (pluggy stands in for one).
    Plugin = type("Plugin", (FalProvider,), {"__module__": "pluggy._kling_plugin"})
    assert user_agent(Plugin) == f"kling-core/{kling_core.__version__} pluggy/{importlib.metadata.version('pluggy')}"
    Loose = type("Loose", (FalProvider,), {"__module__": "acme_kling_plugin.provider"})
    assert user_agent(Loose) == f"kling-core/{kling_core.__version__} acme_kling_plugin"
    assert make(Plugin).build_submit(EditRequest(prompt="x", video=V)).headers["user-agent"] == user_agent(Plugin)
