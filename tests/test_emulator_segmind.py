"""`kling edit --provider segmind` against `kling emulate`: the mock's render, end to end, and Segmind's shapes.

The emulator runs in a background thread on a free port (the ``kling_emulator`` fixture, with
``hosts=("segmind",)``); our client talks to it as to api.segmind.com: v2 submit, status
polls, result, download of ``output``. Segmind takes URLs only, so the inputs are first put
in the emulator through Segmind's own ``upload-asset``.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import PROMPT, host_client, kling
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.errors import InsufficientCreditsError, KlingError, RateLimitedError
from kling_core.media import SampleMedia

pytestmark = [pytest.mark.ffmpeg, pytest.mark.kling_emulator(hosts=("segmind",))]
SLUG = "kling-o1-video-to-video-edit"


def _upload(emu: Any, *paths: Path) -> list[str]:
    """Segmind's upload-asset: data URLs in, URLs on the emulator out."""
    kinds = {".mp4": "video/mp4", ".png": "image/png", ".jpg": "image/jpeg"}
    data_urls = [f"data:{kinds[p.suffix]};base64,{base64.b64encode(p.read_bytes()).decode()}" for p in paths]
    answer = httpx.post(f"{emu.urls['segmind']}/upload-asset", json={"data_urls": data_urls},
                        headers={"x-api-key": emu.keys["segmind"]}, timeout=30)
    assert answer.status_code == 200, answer.text
    urls: list[str] = answer.json()["file_urls"]
    return urls


def _wait(http: httpx.Client, status_url: str) -> httpx.Response:
    for _ in range(400):
        answer = http.get(status_url)
        if answer.json()["status"] in ("COMPLETED", "FAILED"):
            return answer
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_kling_edit_provider_segmind_gives_the_mocks_render(kling_emulator: Any, kling_mock_client: EditClient,
                                                            sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    video_url, image_url = _upload(kling_emulator, sample.video, sample.images[0])
    (tmp_path / "kling.toml").write_text(kling_emulator.kling_config())
    done = kling(["edit", video_url, "-p", PROMPT, "--image", image_url, "--provider", "segmind",
                   "-o", "out.mp4", "--json", "--config", "kling.toml"],
                  tmp_path, kling_emulator.environ())
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "segmind" and result["job_id"]
    segmind_bytes = (tmp_path / "out.mp4").read_bytes()

    # The same request through the mock itself renders the very same bytes.
    mock = kling_mock_client.edit(kling_mock_client.request(str(sample.video), PROMPT, images=[str(sample.images[0])]),
                                  output=tmp_path / "mock.mp4")
    assert mock.video.path is not None
    assert segmind_bytes == Path(mock.video.path).read_bytes()

    lines = "\n".join(kling_emulator.lines)
    assert f'"POST /segmind/v2/{SLUG}" 200' in lines
    assert "/segmind/v2/requests/" in lines and "/status" in lines and "/segmind/files/" in lines
    assert "Traceback" not in lines and '" 500 ' not in lines


def test_scripted_insufficient_credits_is_segmind_406(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                      tmp_path: Path) -> None:
    (video_url,) = _upload(kling_emulator, sample.video)
    with host_client(kling_emulator, tmp_path, "segmind") as client:
        request = client.request(video_url, "Make it night [fail:insufficient_credits]")
        with pytest.raises(InsufficientCreditsError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 406
    submits = [line for line in kling_emulator.lines if f"/v2/{SLUG}" in line]
    assert len(submits) == 1 and '" 406 ' in submits[0]


@pytest.mark.kling_emulator(hosts=("segmind",), retry_after=7)
def test_scripted_rate_limit_refuses_the_submit(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                tmp_path: Path) -> None:
    (video_url,) = _upload(kling_emulator, sample.video)
    with host_client(kling_emulator, tmp_path, "segmind") as client:
        request = client.request(video_url, "Make it night [fail:rate_limited]")
        with pytest.raises(RateLimitedError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 429
    submits = [line for line in kling_emulator.lines if f"/v2/{SLUG}" in line]
    assert len(submits) == 1 and '" 429 ' in submits[0]  # exactly one POST: never retried


@pytest.mark.kling_emulator(hosts=("segmind",), fail={"segmind": "content_policy"})
def test_a_failed_job_is_failed_422_and_a_job_error(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                    tmp_path: Path) -> None:
    (video_url,) = _upload(kling_emulator, sample.video)
    with host_client(kling_emulator, tmp_path, "segmind") as client, pytest.raises(KlingError) as info:
        client.edit(client.request(video_url, "Make it night"), output=tmp_path / "o.mp4")
    assert "content checker" in str(info.value)
    assert any("/status" in line and '" 422 ' in line for line in kling_emulator.lines)


def test_auth_bad_requests_and_input_limits_in_segminds_shapes(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                               tmp_path: Path) -> None:
    from kling_core.media.samples import make_clip

    base, key = kling_emulator.urls["segmind"], kling_emulator.keys["segmind"]
    submit = f"{base}/v2/{SLUG}"
    # Keys: missing, malformed, not the configured one -> 401 {"error": ...}
    missing = httpx.post(submit, json={"prompt": "x", "video_url": "y"})
    assert missing.status_code == 401 and missing.json() == {"error": "Missing Authorization or x-api-key in header"}
    for bad in ("other-key", "has space"):
        answer = httpx.post(submit, json={}, headers={"x-api-key": bad})
        assert answer.status_code == 401 and set(answer.json()) == {"error"}
    short = make_clip(tmp_path / "short.mp4", duration=2.0, size=(1280, 720))
    (short_url,) = _upload(kling_emulator, short)
    with httpx.Client(headers={"x-api-key": key}, timeout=30) as http:
        # Bad requests: Segmind's {"error": ...} shape, never a 500.
        bad = {
            "malformed": http.post(submit, content=b'{"prompt": ', headers={"content-type": "application/json"}),
            "array": http.post(submit, json=[1, 2]),
            "form": http.post(submit, content=b"prompt=x", headers={"content-type": "application/x-www-form-urlencoded"}),
            "model": http.post(f"{base}/v2/no-such-model", json={}),
            "path": http.get(f"{base}/v3/whatever"),
            "method": http.get(submit),
            "request": http.get(f"{base}/v2/requests/nope/status"),
        }
        assert {name: a.status_code for name, a in bad.items()} == {
            "malformed": 400, "array": 400, "form": 406, "model": 404, "path": 404, "method": 405, "request": 404}
        for answer in bad.values():
            assert set(answer.json()) == {"error"}, answer.text
        assert bad["request"].json() == {"error": "Request nope not found"}
        assert "x-remaining-credits" in bad["model"].headers

        # Input limits: accepted (200), then FAILED with HTTP 422 on status and result.
        cases = {"types": {"prompt": 3, "video_url": short_url},
                 "short": {"prompt": "x", "video_url": short_url},
                 "outside": {"prompt": "x", "video_url": "https://example.com/clip.mp4"}}
        failed = {}
        for name, body in cases.items():
            sub = http.post(submit, json=body)
            assert sub.status_code == 200 and sub.json()["status"] == "QUEUED", sub.text
            assert float(sub.headers["x-remaining-credits"]) < 1000
            status = _wait(http, sub.json()["status_url"])
            assert status.status_code == 422 and status.json()["status"] == "FAILED"
            result = http.get(sub.json()["response_url"])
            assert result.status_code == 422 and result.json()["error"] == status.json()["error"]
            failed[name] = status.json()["error"]
    assert failed["types"] == "Prompt is Mandatory and must be string"
    assert failed["short"].startswith("video_url: Video duration 2.00s is below the minimum")
    assert failed["outside"].startswith("video_url: Failed to download the file")
    assert "Traceback" not in "\n".join(kling_emulator.lines)


@pytest.mark.kling_emulator(hosts=("segmind",), render="fast")
def test_v1_blocking_answers_the_video_bytes(kling_emulator: Any, sample: SampleMedia) -> None:  # noqa: F811
    (video_url,) = _upload(kling_emulator, sample.video)
    base, key = kling_emulator.urls["segmind"], kling_emulator.keys["segmind"]
    with httpx.Client(headers={"x-api-key": key}, timeout=120) as http:
        raw = http.post(f"{base}/v1/{SLUG}", json={"prompt": "make it night", "video_url": video_url})
        assert raw.status_code == 200 and raw.headers["content-type"] == "video/mp4"
        assert raw.content[4:8] == b"ftyp" and "x-remaining-credits" in raw.headers
        doc = http.post(f"{base}/v1/{SLUG}", json={"prompt": "make it night", "video_url": video_url},
                        headers={"accept": "application/json"})
        assert doc.status_code == 200 and doc.json()["status"] == "COMPLETED"
        assert http.get(doc.json()["output"]).content == raw.content
        refused = http.post(f"{base}/v1/{SLUG}", json={"video_url": video_url})
        assert refused.status_code == 400 and refused.json() == {"error": "Prompt is Mandatory and must be string"}
