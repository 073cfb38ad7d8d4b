"""`kling edit --provider kling` against `kling emulate`: the mock's render end to end, Kling's JWT
checks, its code envelope for bad requests, external_task_id look-up, callbacks and failures."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from emulator_helpers import edit_matches_mock, host_client, poll
from loopback_servers import receiver
from media_fixtures import LoopbackServer, loopback, sample  # noqa: F401 - fixtures

from kling_core.client import EditClient
from kling_core.errors import InsufficientCreditsError, JobFailedError, RateLimitedError
from kling_core.media import SampleMedia

pytestmark = pytest.mark.ffmpeg
KLING = pytest.mark.kling_emulator(hosts=["kling"])
TASKS = "/v1/videos/omni-video"


def _serve(server: LoopbackServer, media: SampleMedia) -> tuple[str, str]:
    shutil.copy(media.video, server.root / "clip.mp4")
    shutil.copy(media.images[0], server.root / "ref.png")
    return server.url("clip.mp4"), server.url("ref.png")


def _token(access: str, secret: str, *, exp: float = 1800, nbf: float = -5) -> str:
    now = time.time()
    return pyjwt.encode({"iss": access, "exp": int(now + exp), "nbf": int(now + nbf)}, secret, algorithm="HS256")


@KLING
def test_kling_edit_provider_kling_gives_the_mocks_render(kling_emulator: Any, kling_mock_client: EditClient,
                                                          sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    result, lines = edit_matches_mock(kling_emulator, "kling", kling_mock_client, sample, tmp_path)
    assert result["job_id"].isdigit()
    assert f'"POST /kling{TASKS}" 200' in lines and "/kling/files/" in lines


@pytest.mark.kling_emulator(hosts=["kling"], retry_after=7)
def test_scripted_rate_limit_is_code_1302(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                          loopback: LoopbackServer, tmp_path: Path) -> None:  # noqa: F811
    video, _ = _serve(loopback, sample)
    with host_client(kling_emulator, tmp_path, "kling") as client, pytest.raises(RateLimitedError) as info:
        client.edit(client.request(video, "Make it night [fail:rate_limited]", quality="std"),
                    output=tmp_path / "o.mp4")
    assert info.value.status_code == 429 and info.value.code == "1302"
    submits = [line for line in kling_emulator.lines if f"POST /kling{TASKS}" in line]
    assert len(submits) == 1 and '" 429 ' in submits[0]


@pytest.mark.kling_emulator(hosts=["kling"], fail={"kling": "insufficient_credits"})
def test_configured_insufficient_credits_is_code_1102(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                      loopback: LoopbackServer, tmp_path: Path) -> None:  # noqa: F811
    video, _ = _serve(loopback, sample)
    with host_client(kling_emulator, tmp_path, "kling") as client, pytest.raises(InsufficientCreditsError) as info:
        client.edit(client.request(video, "Make it night", quality="std"), output=tmp_path / "o.mp4")
    assert info.value.status_code == 429 and info.value.code == "1102"


@KLING
def test_scripted_content_policy_fails_the_task(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                loopback: LoopbackServer, tmp_path: Path) -> None:  # noqa: F811
    video, _ = _serve(loopback, sample)
    with host_client(kling_emulator, tmp_path, "kling") as client, pytest.raises(JobFailedError) as info:
        client.edit(client.request(video, "Make it night [fail:content_policy]", quality="std"),
                    output=tmp_path / "o.mp4")
    assert "risk control" in str(info.value)
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.kling_emulator(hosts=["kling"], render="sample")
def test_jwt_checks_answer_klings_401_codes(kling_emulator: Any) -> None:
    base = kling_emulator.urls["kling"]
    access, _, secret = kling_emulator.keys["kling"].partition(":")
    body = {"prompt": "x", "video_list": [{"video_url": "http://127.0.0.1:9/x.mp4"}]}
    cases = {
        None: 1001,
        "Bearer": 1002,
        "Token abc": 1002,
        "Bearer not-a-jwt": 1002,
        f"Bearer {_token(access, 'wrong-secret-wrong-secret-wrong-secret')}": 1000,
        f"Bearer {_token('someone-else', secret)}": 1000,
        f"Bearer {_token(access, secret, exp=-10)}": 1004,
        f"Bearer {_token(access, secret, nbf=600)}": 1003,
    }
    for header, code in cases.items():
        headers = {} if header is None else {"authorization": header}
        for answer in (httpx.post(f"{base}{TASKS}", json=body, headers=headers),
                       httpx.get(f"{base}{TASKS}/123", headers=headers)):
            assert answer.status_code == 401, (header, answer.text)
            doc = answer.json()
            assert doc["code"] == code and doc["message"] and doc["request_id"] and "data" not in doc


@pytest.mark.kling_emulator(hosts=["kling"], render="sample")
def test_bad_requests_lookup_duplicates_and_callbacks(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                      loopback: LoopbackServer) -> None:  # noqa: F811
    video, image = _serve(loopback, sample)
    base = kling_emulator.urls["kling"]
    access, _, secret = kling_emulator.keys["kling"].partition(":")
    with receiver() as (hook, received):
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {_token(access, secret)}"},
                          timeout=30) as http_:
            def refused(answer: httpx.Response, status: int, code: int) -> str:
                assert answer.status_code == status, answer.text
                doc = answer.json()
                assert doc["code"] == code and doc["request_id"], doc
                return str(doc["message"])

            refused(http_.post(TASKS, content=b"{nope", headers={"content-type": "application/json"}), 400, 1200)
            refused(http_.post(TASKS, json=[1, 2]), 400, 1200)
            assert "prompt" in refused(http_.post(TASKS, json={"prompt": 5}), 400, 1201)
            assert "model_name" in refused(http_.post(TASKS, json={"model_name": "kling-v9", "prompt": "x"}), 400, 1201)
            many = {"prompt": "x", "video_list": [{"video_url": video}], "image_list": [{"image_url": image}] * 5}
            assert "image_list" in refused(http_.post(TASKS, json=many), 400, 1201)
            refused(http_.post(TASKS, json={"prompt": "x" * 2501, "video_list": [{"video_url": video}]}), 400, 1201)
            refused(http_.get("/v2/nothing"), 404, 1203)
            refused(http_.delete(f"{TASKS}/1"), 404, 1202)
            refused(http_.get(f"{TASKS}/no-such-task"), 404, 1203)

            task = {"model_name": "kling-video-o1", "prompt": "Make it night with <<<image_1>>>",
                    "video_list": [{"video_url": video, "refer_type": "base", "keep_original_sound": "no"}],
                    "image_list": [{"image_url": image}], "mode": "std", "external_task_id": "my-task-1",
                    "callback_url": hook}
            created = http_.post(TASKS, json=task).json()
            assert created["code"] == 0 and created["message"] == "SUCCEED"
            data = created["data"]
            assert data["task_status"] == "submitted" and data["task_info"] == {"external_task_id": "my-task-1"}
            assert "already exists" in refused(http_.post(TASKS, json=task), 400, 1201)
            data = poll(http_, f"{TASKS}/my-task-1",  # by external_task_id: the reconcile path
                        lambda doc: doc["data"]["task_status"] in ("succeed", "failed"))["data"]
            assert data["task_status"] == "succeed", data
            assert data["task_id"] == created["data"]["task_id"] and float(data["final_unit_deduction"]) > 0
            url = data["task_result"]["videos"][0]["url"]
            assert url.startswith(f"{base}/files/") and httpx.get(url).content[4:8] == b"ftyp"
            assert http_.get(f"{TASKS}/{data['task_id']}").json()["data"]["task_status"] == "succeed"
            listed = http_.get(TASKS, params={"pageNum": 1, "pageSize": 10}).json()["data"]
            assert [t["task_id"] for t in listed] == [data["task_id"]]
        received.wait(1, seconds=5)
        got = json.loads(received[0][1])
        assert got["task_id"] == data["task_id"] and got["task_status"] == "succeed"
    assert "Traceback" not in "\n".join(kling_emulator.lines)
