"""`kling edit --provider unifically` against `kling emulate`: the mock's render, end to end,
Unifically's own envelope and error codes, dry runs, callbacks and scripted failures.

Unifically takes URLs only (no upload API), so inputs are served from a loopback file server,
one of the places the emulator may fetch from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import edit_matches_mock, host_client, poll
from loopback_servers import receiver, serve_folder
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.errors import InsufficientCreditsError, ProviderValidationError, RateLimitedError
from kling_core.media import SampleMedia

pytestmark = [pytest.mark.ffmpeg, pytest.mark.kling_emulator(hosts=("unifically",))]
O1 = "kuaishou/kling-o1-video-edit"


def _finished(doc: Any) -> bool:
    return doc["data"]["status"] in ("completed", "failed")


def test_kling_edit_provider_unifically_gives_the_mocks_render(kling_emulator: Any, kling_mock_client: EditClient,
                                                               sample: SampleMedia,  # noqa: F811
                                                               tmp_path: Path) -> None:
    result, lines = edit_matches_mock(kling_emulator, "unifically", kling_mock_client, sample, tmp_path)
    assert '"POST /unifically/v1/tasks" 200' in lines and f"/unifically/v1/tasks/{result['job_id']}" in lines
    assert "/unifically/files/" in lines


@pytest.mark.kling_emulator(hosts=("unifically",), retry_after=7, render="fast")
def test_scripted_rate_limit_refuses_the_submit(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                tmp_path: Path) -> None:
    with serve_folder(sample.video.parent) as files, host_client(kling_emulator, tmp_path, "unifically") as client:
        request = client.request(f"{files}/{sample.video.name}", "Make it night [fail:rate_limited]", quality="std")
        with pytest.raises(RateLimitedError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 429 and info.value.retry_after == 7
    assert info.value.code == "rate_limit_exceeded"
    submits = [line for line in kling_emulator.lines if '"POST /unifically/v1/tasks"' in line]
    assert len(submits) == 1 and '" 429 ' in submits[0]  # never retried


@pytest.mark.kling_emulator(hosts=("unifically",), fail={"unifically": "insufficient_credits"}, render="fast")
def test_a_hosts_configured_failure_is_a_402(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                             tmp_path: Path) -> None:
    with serve_folder(sample.video.parent) as files, host_client(kling_emulator, tmp_path, "unifically") as client:
        request = client.request(f"{files}/{sample.video.name}", "Make it night", quality="std")
        with pytest.raises(InsufficientCreditsError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 402


@pytest.mark.kling_emulator(hosts=("unifically",), render="fast")
def test_input_limits_fail_the_task_as_validation_error(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                        tmp_path: Path) -> None:
    from kling_core.media.samples import make_clip

    make_clip(tmp_path / "media" / "short.mp4", duration=2.0, size=(1280, 720))
    with serve_folder(tmp_path / "media") as files, host_client(kling_emulator, tmp_path, "unifically") as client:
        request = client.request(f"{files}/short.mp4", "Make it night", quality="std")
        with pytest.raises(ProviderValidationError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert "input.video_url" in str(info.value) and "below the minimum" in str(info.value)


@pytest.mark.kling_emulator(hosts=("unifically",), render="sample")
def test_wire_shapes_auth_validation_dry_run_and_callbacks(kling_emulator: Any, tmp_path: Path) -> None:
    base, key = kling_emulator.urls["unifically"], kling_emulator.keys["unifically"]
    good = {"model": O1, "input": {"prompt": "Make it night", "video_url": f"{base}/files/none/clip.mp4",
                                   "video_mode": "transform", "mode": "pro"}}
    http_ = httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=30)
    with receiver() as (callback, received), http_:
        # Credentials: the host's own 401 envelope.
        for headers in ({"authorization": ""}, {"authorization": "Key abc"}, {"authorization": "Bearer other"}):
            r = http_.post(f"{base}/v1/tasks", json=good, headers=headers)
            assert r.status_code == 401
            assert r.json() == {"code": 401, "success": False,
                                "data": {"message": "Invalid API key", "code": "authentication_failed"}}
        # Bad requests: the envelope, never a 500.
        r = http_.post(f"{base}/v1/tasks", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["data"]["code"] == "validation_error"
        r = http_.post(f"{base}/v1/tasks", json=[1, 2])
        assert r.status_code == 422 and "JSON object" in r.json()["data"]["message"]
        r = http_.post(f"{base}/v1/tasks", json={"model": O1, "input": {"prompt": 5, "keep_audio": "yes",
                                                                         "image_urls": ["x"] * 5}})
        data = r.json()["data"]
        assert r.status_code == 422 and data["code"] == "validation_error" and r.json()["code"] == 422
        assert "Missing required parameter: video_url" in data["errors"]
        assert any("prompt must be a string" in e for e in data["errors"])
        assert any("At most 4" in e for e in data["errors"])
        r = http_.post(f"{base}/v1/tasks", json={**good, "input": {**good["input"], "elements": []}})
        assert r.status_code == 422 and "O1 Edit only takes image_urls" in r.json()["data"]["message"]
        r = http_.post(f"{base}/v1/tasks", json={**good, "model": "kuaishou/other"})
        assert r.status_code == 422 and "Unknown model" in r.json()["data"]["message"]
        assert http_.get(f"{base}/v1/nothing").json()["data"]["code"] == "not_found"
        assert http_.delete(f"{base}/v1/tasks").status_code == 405
        missing = http_.get(f"{base}/v1/tasks/nope")
        assert missing.status_code == 404 and missing.json()["data"]["code"] == "not_found"
        # dry_run validates and prices; no task is made.
        jobs_before = len(kling_emulator.emulator.host_objects["unifically"].engine.jobs)
        r = http_.post(f"{base}/v1/tasks", json={**good, "dry_run": True})
        assert r.status_code == 200 and r.json()["success"] is True
        assert r.json()["data"]["valid"] is True and r.json()["data"]["currency"] == "USD"
        assert len(kling_emulator.emulator.host_objects["unifically"].engine.jobs) == jobs_before
        # A task with a callback: submit, poll, callback with data.video_url; the file is served.
        r = http_.post(f"{base}/v1/tasks", json={**good, "callback_url": callback})
        assert r.status_code == 200
        task_id = r.json()["data"]["task_id"]
        assert r.json() == {"code": 200, "success": True, "data": {"task_id": task_id, "status": "pending"}}
        done = poll(http_, f"{base}/v1/tasks/{task_id}", _finished)["data"]
        assert done["status"] == "completed" and done["output"]["video_url"].startswith(f"{base}/files/")
        video = httpx.get(done["output"]["video_url"])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        # A scripted job failure: failed, with data.error and an error_message callback.
        r = http_.post(f"{base}/v1/tasks", json={**good, "callback_url": callback},
                       headers={"x-kling-emulator-fail": "content_policy"})
        failed = poll(http_, f"{base}/v1/tasks/{r.json()['data']['task_id']}", _finished)["data"]
        assert failed["status"] == "failed" and failed["error"]["code"] == "content_policy_violation"
        received.wait(2)
    by_status = {doc["status"]: doc for doc in (json.loads(body) for _, body in received)}
    assert by_status["completed"] == {"task_id": task_id, "status": "completed",
                                      "data": {"video_url": done["output"]["video_url"]}}
    assert by_status["failed"]["error_message"] == failed["error"]["message"]
    assert "Traceback" not in "\n".join(kling_emulator.lines)


@pytest.mark.kling_emulator(hosts=("unifically",), render="sample", max_json_bytes=1000)
def test_an_oversized_body_is_a_413_in_the_envelope(kling_emulator: Any) -> None:
    base, key = kling_emulator.urls["unifically"], kling_emulator.keys["unifically"]
    r = httpx.post(f"{base}/v1/tasks", json={"model": O1, "input": {"prompt": "x" * 2000}},
                   headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 413
    assert r.json() == {"code": 413, "success": False,
                        "data": {"message": "Request body too large", "code": "validation_error"}}
