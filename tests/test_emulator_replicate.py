"""`kling edit --provider replicate` against `kling emulate`: the mock's render end to end,
Replicate's problem-detail errors, cancel, and webhooks signed the Standard Webhooks way.

Replicate's Kling models take URLs, so inputs are served from a loopback file server, one of
the places the emulator may fetch from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import edit_matches_mock, host_client, poll, submit_is_uncertain_and_never_resent
from loopback_servers import receiver
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.errors import RateLimitedError
from kling_core.media import SampleMedia

pytestmark = [pytest.mark.ffmpeg, pytest.mark.kling_emulator(hosts=("replicate",))]
O1_ROUTE = "/v1/models/kwaivgi/kling-o1/predictions"
FINISHED = ("succeeded", "failed", "canceled")


def test_kling_edit_provider_replicate_gives_the_mocks_render(kling_emulator: Any, kling_mock_client: EditClient,
                                                              sample: SampleMedia,  # noqa: F811
                                                              tmp_path: Path) -> None:
    result, lines = edit_matches_mock(kling_emulator, "replicate", kling_mock_client, sample, tmp_path)
    assert f'"POST /replicate{O1_ROUTE}" 201' in lines and f"/replicate/v1/predictions/{result['job_id']}" in lines
    assert "/replicate/files/" in lines


@pytest.mark.kling_emulator(hosts=("replicate",), retry_after=7, render="sample")
def test_scripted_rate_limit_refuses_the_create_once(kling_emulator: Any, tmp_path: Path) -> None:
    with host_client(kling_emulator, tmp_path, "replicate") as client:
        request = client.request("http://127.0.0.1:9/clip.mp4", "Make it night [fail:rate_limited]", quality="std")
        with pytest.raises(RateLimitedError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 429 and info.value.retry_after == 7
    creates = [line for line in kling_emulator.lines if O1_ROUTE in line]
    assert len(creates) == 1 and '" 429 ' in creates[0]  # never sent again


@pytest.mark.kling_emulator(hosts=("replicate",), render="sample")
def test_a_5xx_at_create_is_uncertain_and_never_sent_again(kling_emulator: Any, tmp_path: Path) -> None:
    with host_client(kling_emulator, tmp_path, "replicate") as client:
        submit_is_uncertain_and_never_resent(client, "replicate", "http://127.0.0.1:9/clip.mp4", tmp_path / "out.mp4")
    assert len([line for line in kling_emulator.lines if O1_ROUTE in line]) == 1


@pytest.mark.kling_emulator(hosts=("replicate",), render="sample")
def test_errors_cancel_and_signed_webhooks_in_replicates_shape(kling_emulator: Any, tmp_path: Path) -> None:
    base, key = kling_emulator.urls["replicate"], kling_emulator.keys["replicate"]
    good = {"input": {"prompt": "Make it night", "reference_video": f"{base}/files/none/clip.mp4",
                      "video_reference_type": "base", "keep_original_sound": False, "mode": "std"}}
    api = httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=30)
    with receiver() as (webhook, received), api:
        for headers in ({"authorization": ""}, {"authorization": "Token abc"}, {"authorization": "Bearer other"}):
            r = api.post(f"{base}{O1_ROUTE}", json=good, headers=headers)
            assert r.status_code == 401 and r.json()["title"] == "Unauthenticated"
        r = api.post(f"{base}{O1_ROUTE}", json={"input": {"prompt": "", "mode": "standard", "duration": 11,
                                                          "reference_images": ["x"]}})
        assert r.status_code == 422 and r.json()["title"] == "Input validation failed"
        fields = {f["field"] for f in r.json()["invalid_fields"]}
        assert {"input.prompt", "input.reference_video", "input.mode", "input.duration",
                "input.reference_images"} <= fields
        # v3-omni names its qualities standard|pro: "std" is O1's word only.
        r = api.post(f"{base}/v1/models/kwaivgi/kling-v3-omni-video/predictions", json=good)
        assert r.status_code == 422 and "input.mode" in r.json()["detail"]
        assert api.post(f"{base}/v1/models/kwaivgi/other/predictions", json=good).status_code == 404
        assert api.get(f"{base}/v1/predictions/nope").status_code == 404
        assert api.delete(f"{base}/v1/predictions/nope").status_code == 405
        # A prediction that never ends, cancelled: canceled, and the cancel answers it.
        r = api.post(f"{base}{O1_ROUTE}", json=good, headers={"x-kling-emulator-fail": "timeout"})
        assert r.status_code == 201 and r.json()["status"] == "starting"
        hung = r.json()
        assert hung["urls"]["get"] == f"{base}/v1/predictions/{hung['id']}"
        cancelled = api.post(hung["urls"]["cancel"])
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"
        assert api.get(hung["urls"]["get"]).json()["status"] == "canceled"
        # With a webhook: the finished prediction is posted, signed.
        r = api.post(f"{base}{O1_ROUTE}", json={**good, "webhook": webhook,
                                                "webhook_events_filter": ["completed"]})
        done = poll(api, r.json()["urls"]["get"], lambda doc: doc["status"] in FINISHED)
        assert done["status"] == "succeeded" and done["output"].startswith(f"{base}/files/")
        assert httpx.get(done["output"]).content[4:8] == b"ftyp"
        secret = api.get(f"{base}/v1/webhooks/default/secret").json()["key"]
        received.wait()
    assert secret.startswith("whsec_") and len(received) == 1
    headers, body = received[0]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(base64.b64decode(secret[6:]), signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert json.loads(body)["id"] == done["id"] and json.loads(body)["status"] == "succeeded"
    assert "Traceback" not in "\n".join(kling_emulator.lines)
