"""The WaveSpeed plugin beyond its cassettes: endpoints per model and quality, refusals before
any call, callbacks (the bare prediction) and the published data it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kling_core_plugins.wavespeed import WaveSpeedProvider, wire

from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Failed, Succeeded
from kling_core.errors import ProtocolError, UnsupportedError
from kling_core.preflight import check_request
from kling_core.testing.doubles import CallLog, build_provider, canary_credentials, refusing_transport

VIDEO = "https://media.example.com/clip.mp4"


def _provider(tmp_path: Path) -> Any:
    return build_provider(WaveSpeedProvider, environ=canary_credentials(WaveSpeedProvider),
                          transport=refusing_transport(CallLog()), work_dir=tmp_path)


@pytest.mark.parametrize(("model", "quality", "path"), [
    ("kling-o1", "std", "/api/v3/kwaivgi/kling-video-o1-std/video-edit"),
    ("kling-o1", "pro", "/api/v3/kwaivgi/kling-video-o1/video-edit"),
    ("kling-o3", "std", "/api/v3/kwaivgi/kling-video-o3-std/video-edit"),
    ("kling-o3", "pro", "/api/v3/kwaivgi/kling-video-o3-pro/video-edit"),
])
def test_each_model_and_quality_has_its_endpoint(tmp_path: Path, model: str, quality: str, path: str) -> None:
    request = EditRequest(prompt="Swap the hat for @Image1 in @Video1", video=VIDEO, model=model,  # type: ignore[arg-type]
                          quality=quality, images=("https://media.example.com/hat.png",),  # type: ignore[arg-type]
                          webhook_url="https://hooks.example.com/ws?a=1")
    built = _provider(tmp_path).build_submit(request)
    assert built.method == "POST" and built.url.host == "api.wavespeed.ai" and built.url.path == path
    assert built.url.params["webhook"] == "https://hooks.example.com/ws?a=1"
    assert wire.build_body(request) == {"prompt": "Swap the hat for <<<image_1>>> in <<<video_1>>>", "video": VIDEO,
                                        "keep_original_sound": False,
                                        "images": ["https://media.example.com/hat.png"]}


@pytest.mark.parametrize(("changes", "field"), [
    ({"elements": (Element(frontal_image="https://media.example.com/f.png",
                                   reference_images=("https://media.example.com/r.png",)),)}, "elements"),
    ({"duration": 5}, "duration"),
    ({"aspect_ratio": "9:16"}, "aspect_ratio"),
    ({"edit_mode": "reference"}, "edit_mode"),
    ({"options": {"enable_sync_mode": True}}, "options.enable_sync_mode"),
    ({"video": "/tmp/local.mp4"}, "video"),
])
def test_what_wavespeed_cannot_take_is_refused_before_any_call(tmp_path: Path, changes: dict[str, Any],
                                                               field: str) -> None:
    request = EditRequest(prompt="Make it night", **{"video": VIDEO, **changes})
    with pytest.raises(UnsupportedError) as info:
        check_request(_provider(tmp_path), request, check_files=False)
    assert field in str(info.value)


def test_callbacks_are_the_bare_prediction(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    done = provider.parse_callback({"id": "p1", "status": "completed", "outputs": ["https://cdn.example.com/o.mp4"],
                                    "error": ""}, model="kling-o3")
    assert isinstance(done, Succeeded) and done.result.video.url == "https://cdn.example.com/o.mp4"
    failed = provider.parse_callback({"id": "p1", "status": "failed", "outputs": [], "error": "bad input"})
    assert isinstance(failed, Failed) and failed.error.message == "bad input"
    flagged = provider.parse_callback({"id": "p1", "status": "completed", "outputs": [], "error": "flagged"})
    assert isinstance(flagged, Failed) and flagged.error.message == "flagged"
    with pytest.raises(ProtocolError):
        provider.parse_callback({"id": "p1", "status": "completed", "outputs": [], "error": ""})
    assert WaveSpeedProvider.spec.callback is not None
    assert WaveSpeedProvider.spec.callback.signature == "wavespeed-v3"


def test_declared_limits_prices_and_concurrency_carry_their_source() -> None:
    caps = WaveSpeedProvider.capabilities
    assert caps.max_in_flight == 2  # the Bronze level new accounts start at
    assert caps.accepts_webhook and not caps.can_cancel and not caps.accepts_local_files
    assert all(p.source.startswith("https://wavespeed.ai/") and p.as_of for p in caps.prices)
    for model in caps.models:
        assert model.video.min_side == 700 and model.max_images == 4 and not model.accepts_elements
