"""The Replicate plugin's pure parts: the prediction body per model, mode and quality, its
webhook fields, what it refuses before any call, and how it reads callbacks and cancels."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from kling_core_plugins.replicate import ReplicateProvider, wire

from kling_core.contract.models import EditRequest
from kling_core.contract.status import Cancelled, Failed, Succeeded
from kling_core.errors import ProtocolError, ValidationError
from kling_core.preflight import check_request
from kling_core.testing.doubles import CallLog, build_provider, canary_credentials, refusing_transport

VIDEO = "https://media.example.com/clip.mp4"
IMAGE = "https://media.example.com/ref.png"


@pytest.fixture
def provider(tmp_path: Path) -> ReplicateProvider:
    made = build_provider(ReplicateProvider, environ=canary_credentials(ReplicateProvider),
                          transport=refusing_transport(CallLog()), work_dir=tmp_path)
    assert isinstance(made, ReplicateProvider)
    return made


def _body(provider: ReplicateProvider, request: EditRequest) -> tuple[str, dict[str, object]]:
    built = provider.build_submit(request)
    return str(built.url), json.loads(built.content)


@pytest.mark.parametrize(("model", "quality", "route", "mode"), [
    ("kling-o1", "std", "kwaivgi/kling-o1", "std"),
    ("kling-o1", "pro", "kwaivgi/kling-o1", "pro"),
    ("kling-o3", "std", "kwaivgi/kling-v3-omni-video", "standard"),
    ("kling-o3", "pro", "kwaivgi/kling-v3-omni-video", "pro"),
])
def test_each_model_goes_to_its_official_route_with_its_mode_word(provider: ReplicateProvider, model: str,
                                                                  quality: str, route: str, mode: str) -> None:
    url, body = _body(provider, EditRequest(prompt="Swap the hat for @Image1, keep @Video1's pace", video=VIDEO,
                                            model=model, quality=quality,  # type: ignore[arg-type]
                                            images=(IMAGE,)))
    assert url == f"https://api.replicate.com/v1/models/{route}/predictions"
    assert body == {"input": {"prompt": "Swap the hat for <<<image_1>>>, keep <<<video_1>>>'s pace",
                              "reference_video": VIDEO, "video_reference_type": "base", "keep_original_sound": False,
                              "mode": mode, "reference_images": [IMAGE]}}


def test_reference_mode_is_feature_and_takes_duration_and_aspect_ratio(provider: ReplicateProvider) -> None:
    _, body = _body(provider, EditRequest(prompt="Same motion, at night", video=VIDEO, model="kling-o3",
                                          edit_mode="reference", duration=12, aspect_ratio="1:1", keep_audio=True))
    assert body["input"] == {"prompt": "Same motion, at night", "reference_video": VIDEO,
                             "video_reference_type": "feature", "keep_original_sound": True, "mode": "pro",
                             "aspect_ratio": "1:1", "duration": 12}


def test_a_webhook_asks_for_the_completed_event_only(provider: ReplicateProvider) -> None:
    _, body = _body(provider, EditRequest(prompt="x", video=VIDEO, webhook_url="https://hooks.example.com/r"))
    assert body["webhook"] == "https://hooks.example.com/r" and body["webhook_events_filter"] == ["completed"]
    assert "webhook" not in _body(provider, EditRequest(prompt="x", video=VIDEO))[1]


@pytest.mark.parametrize(("change", "field"), [
    ({"duration": 5}, "duration"),  # the base edit follows the input
    ({"aspect_ratio": "9:16"}, "aspect_ratio"),
    ({"edit_mode": "reference", "duration": 11}, "duration"),  # O1's feature reference: 3-10 s
    ({"images": (IMAGE,) * 5}, "images"),  # at most 4 with a video
    ({"options": {"wait": 60}}, "options.wait"),
])
def test_out_of_bounds_requests_are_refused_naming_the_field(provider: ReplicateProvider, change: dict[str, object],
                                                             field: str) -> None:
    request = EditRequest(prompt="x", video=VIDEO, model="kling-o1", **change)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        check_request(provider, request)
    assert any(p.path.startswith(field) for p in info.value.problems), info.value


def test_callbacks_are_signed_predictions_read_by_the_spec(provider: ReplicateProvider) -> None:
    assert wire.SPEC.callback is not None and wire.SPEC.callback.signature == "standard-webhooks"
    done = provider.parse_callback({"id": "p1", "status": "succeeded", "output": "https://replicate.delivery/o.mp4"})
    assert isinstance(done, Succeeded) and done.result.video.url == "https://replicate.delivery/o.mp4"
    listed = provider.parse_callback({"id": "p1", "status": "succeeded", "output": ["https://replicate.delivery/a.mp4"]})
    assert isinstance(listed, Succeeded) and listed.result.video.url.endswith("/a.mp4")
    failed = provider.parse_callback({"id": "p1", "status": "failed", "error": "CUDA out of memory"})
    assert isinstance(failed, Failed) and failed.error.message == "CUDA out of memory"
    assert isinstance(provider.parse_callback({"id": "p1", "status": "canceled"}), Cancelled)
    aborted = provider.parse_callback({"id": "p1", "status": "aborted", "error": None})  # stopped before it ran
    assert isinstance(aborted, Failed) and "aborted" in aborted.error.message
    with pytest.raises(ProtocolError):
        provider.parse_callback({"id": "p1", "status": "succeeded", "output": None})
    with pytest.raises(ProtocolError):
        provider.parse_callback({"id": "p1", "status": "booting"})


def test_resume_rebuilds_the_get_and_cancel_urls(provider: ReplicateProvider) -> None:
    handle = provider.resume("abc123", model="kling-o3")
    assert handle.urls == {"status": "https://api.replicate.com/v1/predictions/abc123",
                           "cancel": "https://api.replicate.com/v1/predictions/abc123/cancel"}


@pytest.mark.parametrize(("status", "accepted"), [("canceled", True), ("processing", True), ("succeeded", False),
                                                  ("failed", False), ("aborted", False)])
def test_a_cancel_answer_is_read_by_the_predictions_status(provider: ReplicateProvider, status: str,
                                                           accepted: bool) -> None:
    handle = provider.resume("abc123")
    response = httpx.Response(200, json={"id": "abc123", "status": status},
                              request=httpx.Request("POST", handle.urls["cancel"]))
    assert provider.parse_cancel(response, handle) is accepted


def test_a_prediction_whose_output_was_removed_says_so(provider: ReplicateProvider) -> None:
    # API predictions lose their output an hour after they end (data_removed): a late resume is told why.
    handle = provider.resume("abc123")
    removed = httpx.Response(200, json={"id": "abc123", "status": "succeeded", "output": None, "data_removed": True},
                             request=httpx.Request("GET", handle.urls["status"]))
    with pytest.raises(ProtocolError, match="removed this prediction's output") as info:
        provider.parse_status(removed, handle)
    assert info.value.job_id == "abc123" and "not resubmitted" in str(info.value)
    failed = httpx.Response(200, json={"id": "abc123", "status": "failed", "error": "boom", "data_removed": True},
                            request=httpx.Request("GET", handle.urls["status"]))
    assert isinstance(provider.parse_status(failed, handle), Failed)  # a failure keeps its own story
