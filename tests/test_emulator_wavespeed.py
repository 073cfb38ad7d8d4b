"""`kling edit --provider wavespeed` against `kling emulate`: the mock's render, end to end,
WaveSpeed's envelope and errors, sync mode, signed webhooks and scripted failures.

WaveSpeed takes media by URL here (its upload API is not wrapped), so inputs are served from a
loopback file server, one of the places the emulator may fetch from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import edit_matches_mock, host_client, poll, submit_is_uncertain_and_never_resent
from loopback_servers import receiver, serve_folder
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.errors import (
    InsufficientCreditsError,
    JobFailedError,
    RateLimitedError,
)
from kling_core.media import SampleMedia

pytestmark = [pytest.mark.ffmpeg, pytest.mark.kling_emulator(hosts=("wavespeed",))]
O1_STD = "api/v3/kwaivgi/kling-video-o1-std/video-edit"


def _finished(doc: Any) -> bool:
    return doc["data"]["status"] in ("completed", "failed")


def test_kling_edit_provider_wavespeed_gives_the_mocks_render(kling_emulator: Any, kling_mock_client: EditClient,
                                                              sample: SampleMedia,  # noqa: F811
                                                              tmp_path: Path) -> None:
    result, lines = edit_matches_mock(kling_emulator, "wavespeed", kling_mock_client, sample, tmp_path)
    assert f'"POST /wavespeed/{O1_STD}" 200' in lines
    assert f"/wavespeed/api/v3/predictions/{result['job_id']}/result" in lines
    assert "/wavespeed/files/" in lines


@pytest.mark.kling_emulator(hosts=("wavespeed",), retry_after=7, render="fast")
def test_scripted_rate_limit_refuses_the_submit_once(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                     tmp_path: Path) -> None:
    with serve_folder(sample.video.parent) as files, host_client(kling_emulator, tmp_path, "wavespeed") as client:
        request = client.request(f"{files}/{sample.video.name}", "Make it night [fail:rate_limited]", quality="std")
        with pytest.raises(RateLimitedError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 429 and info.value.retry_after == 7
    submits = [line for line in kling_emulator.lines if f'"POST /wavespeed/{O1_STD}' in line]
    assert len(submits) == 1 and '" 429 ' in submits[0]  # never retried


@pytest.mark.kling_emulator(hosts=("wavespeed",), render="sample")
def test_a_5xx_at_submit_is_uncertain_and_never_sent_again(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                          tmp_path: Path) -> None:
    with serve_folder(sample.video.parent) as files, host_client(kling_emulator, tmp_path, "wavespeed") as client:
        submit_is_uncertain_and_never_resent(client, "wavespeed", f"{files}/{sample.video.name}", tmp_path / "out.mp4")
    assert len([line for line in kling_emulator.lines if f'"POST /wavespeed/{O1_STD}' in line]) == 1


@pytest.mark.kling_emulator(hosts=("wavespeed",), fail={"wavespeed": "insufficient_credits"}, render="fast")
def test_a_hosts_configured_failure_is_insufficient_credits(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                            tmp_path: Path) -> None:
    with serve_folder(sample.video.parent) as files, host_client(kling_emulator, tmp_path, "wavespeed") as client:
        request = client.request(f"{files}/{sample.video.name}", "Make it night", quality="pro", model="kling-o3")
        with pytest.raises(InsufficientCreditsError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 402
    assert any('"POST /wavespeed/api/v3/kwaivgi/kling-video-o3-pro/video-edit' in line for line in kling_emulator.lines)


@pytest.mark.kling_emulator(hosts=("wavespeed",), render="fast")
def test_input_limits_and_completed_with_error_fail_the_job(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                            tmp_path: Path) -> None:
    from kling_core.media.samples import make_clip

    make_clip(tmp_path / "media" / "short.mp4", duration=2.0, size=(1280, 720))
    with serve_folder(tmp_path / "media") as files, host_client(kling_emulator, tmp_path, "wavespeed") as client:
        with pytest.raises(JobFailedError) as info:
            client.edit(client.request(f"{files}/short.mp4", "Make it night", quality="std"),
                        output=tmp_path / "out.mp4")
        assert "video" in str(info.value) and "below the minimum" in str(info.value)
        # "completed" carrying an error and no output is a failed job, never a success.
        with pytest.raises(JobFailedError) as info:
            client.edit(client.request(f"{files}/short.mp4", "Make it night [fail:completed_with_error]",
                                       quality="std"), output=tmp_path / "out2.mp4")
        assert "elementReferList" in str(info.value)
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out2.mp4").exists()


@pytest.mark.kling_emulator(hosts=("wavespeed",), render="sample")
def test_wire_shapes_auth_validation_sync_mode_and_signed_webhooks(kling_emulator: Any, tmp_path: Path) -> None:
    base, key = kling_emulator.urls["wavespeed"], kling_emulator.keys["wavespeed"]
    good = {"prompt": "Make it night", "video": f"{base}/files/none/clip.mp4"}
    client = httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=30)
    with receiver() as (webhook, received), client:
        # Credentials: the envelope with the status as code.
        for headers in ({"authorization": ""}, {"authorization": "Key abc"}, {"authorization": "Bearer other"}):
            r = client.post(f"{base}/{O1_STD}", json=good, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == 401 and r.json()["data"] is None
        # Bad requests: every problem named, never a 500.
        r = client.post(f"{base}/{O1_STD}", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "invalid JSON" in r.json()["message"]
        r = client.post(f"{base}/{O1_STD}", json={"prompt": 5, "images": ["x"], "keep_original_sound": "yes",
                                                  "elements": []})
        message = r.json()["message"]
        assert r.status_code == 400 and r.json()["code"] == 400
        for part in ("prompt:", "video: required", "images:", "keep_original_sound:", "elements: unknown"):
            assert part in message
        # Image caps per the model pages: O1 std "Max 10", O3 "up to 4".
        r = client.post(f"{base}/{O1_STD}", json={**good, "images": [good["video"]] * 11})
        assert r.status_code == 400 and "at most 10" in r.json()["message"]
        r = client.post(f"{base}/api/v3/kwaivgi/kling-video-o3-std/video-edit",
                        json={**good, "images": [good["video"]] * 5})
        assert r.status_code == 400 and "at most 4" in r.json()["message"]
        assert client.post(f"{base}/api/v3/kwaivgi/kling-video-o9/video-edit", json=good).status_code == 404
        assert client.post(f"{base}/{O1_STD}?webhook=ftp://x", json=good).status_code == 400
        assert client.get(f"{base}/api/v3/nothing").json()["code"] == 404
        assert client.delete(f"{base}/{O1_STD}").status_code == 405
        assert client.get(f"{base}/api/v3/predictions/nope/result").status_code == 404
        # Sync mode: the answer is the finished prediction.
        r = client.post(f"{base}/api/v3/kwaivgi/kling-video-o3-pro/video-edit",
                        json={**good, "enable_sync_mode": True})
        assert r.status_code == 200 and r.json()["data"]["status"] == "completed"
        assert r.json()["data"]["outputs"][0].startswith(f"{base}/files/")
        # A prediction with a webhook: created, urls.get, then a signed POST of the bare prediction.
        r = client.post(f"{base}/api/v3/kwaivgi/kling-video-o1/video-edit", params={"webhook": webhook},
                        json=good)
        data = r.json()["data"]
        assert r.json()["message"] == "success" and data["status"] == "created"
        assert data["urls"]["get"] == f"{base}/api/v3/predictions/{data['id']}/result"
        done = poll(client, data["urls"]["get"], _finished)
        assert done["data"]["status"] == "completed" and done["data"]["error"] == ""
        assert client.get(done["data"]["outputs"][0]).status_code == 200
        secret = client.get(f"{base}/api/v3/webhook/secret").json()["data"]["secret"]
        received.wait()
    headers, body = received[0]
    assert json.loads(body)["id"] == data["id"] and json.loads(body)["status"] == "completed"
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = hmac.new(secret.removeprefix("whsec_").encode(), signed, hashlib.sha256).hexdigest()
    assert headers["webhook-signature"] == f"v3,{expected}"
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 300
