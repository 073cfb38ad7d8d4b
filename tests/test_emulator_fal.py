"""`kling edit --provider fal` against `kling emulate`: the mock's render, end to end, and fal's failures.

The emulator runs in a background thread on a free port (the ``kling_emulator`` fixture); our
client talks to it as to fal: upload to storage, submit, poll, result, download.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import PROMPT, host_client, kling, mock_render, poll
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.errors import ContentPolicyError, ProviderValidationError, RateLimitedError
from kling_core.media import SampleMedia

pytestmark = pytest.mark.ffmpeg


def test_kling_edit_provider_fal_gives_the_mocks_render(kling_emulator: Any, kling_mock_client: EditClient,
                                                        sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "kling.toml").write_text(kling_emulator.kling_config())
    started = time.monotonic()
    done = kling(["edit", str(sample.video), "-p", PROMPT, "--image", str(sample.images[0]), "--quality", "std",
                   "--provider", "fal", "-o", "out.mp4", "--json", "--config", "kling.toml"],
                  tmp_path, {"FAL_KEY": kling_emulator.keys["fal"]})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "fal" and result["job_id"]
    fal_bytes = (tmp_path / "out.mp4").read_bytes()
    elapsed = time.monotonic() - started

    # The same request through the mock itself renders the very same bytes.
    assert fal_bytes == mock_render(kling_mock_client, sample, tmp_path)

    # What the emulator saw, one line each: token, upload(s), submit, polls, result, download.
    lines = "\n".join(kling_emulator.lines)
    assert "/fal/rest/storage/auth/token" in lines and "/fal/cdn/files/upload" in lines
    assert '"POST /fal/fal-ai/kling-video/o1/standard/video-to-video/edit" 200' in lines
    assert "Traceback" not in lines and '" 500 ' not in lines
    print(f"kling edit --provider fal against the emulator: {elapsed:.1f} s")


def test_scripted_content_policy_failure_in_fals_shape(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                       tmp_path: Path) -> None:
    with host_client(kling_emulator, tmp_path, "fal") as client:
        request = client.request(str(sample.video), "Make it night [fail:content_policy]", quality="std")
        with pytest.raises(ContentPolicyError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert "content checker" in str(info.value)
    assert info.value.code == "content_policy_violation"
    assert not (tmp_path / "out.mp4").exists()
    # fal's own shape on the wire: COMPLETED, then the result GET answered 422 with a detail list.
    assert any("/requests/" in line and '" 422 ' in line for line in kling_emulator.lines)


@pytest.mark.kling_emulator(retry_after=7)
def test_scripted_rate_limit_refuses_the_submit(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                tmp_path: Path) -> None:
    with host_client(kling_emulator, tmp_path, "fal") as client:
        request = client.request(str(sample.video), "Make it night [fail:rate_limited]", quality="std")
        with pytest.raises(RateLimitedError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
    assert info.value.status_code == 429 and info.value.retry_after == 7
    submits = [line for line in kling_emulator.lines if "video-to-video/edit" in line]
    assert len(submits) == 1 and '" 429 ' in submits[0]  # exactly one POST: never retried


@pytest.mark.kling_emulator(fail={"fal": "completed_with_error"})
def test_a_hosts_configured_failure_applies_to_every_job(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                         tmp_path: Path) -> None:
    with host_client(kling_emulator, tmp_path, "fal") as client, pytest.raises(ProviderValidationError) as info:
        client.edit(client.request(str(sample.video), "Make it night", quality="std"), output=tmp_path / "o.mp4")
    assert "elementReferList" in str(info.value) and info.value.code == "value_error"


@pytest.mark.kling_emulator(render="fast")
def test_input_limits_and_downloads_come_back_as_fals_422(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                          tmp_path: Path) -> None:
    from kling_core.media.samples import make_clip

    base, key = kling_emulator.urls["fal"], kling_emulator.keys["fal"]
    short = make_clip(tmp_path / "short.mp4", duration=2.0, size=(1280, 720))
    with httpx.Client(headers={"authorization": f"Key {key}"}, timeout=30) as http:
        token = http.post(f"{base}/rest/storage/auth/token", json={}).json()
        up = httpx.post(f"{token['base_url']}/files/upload", content=short.read_bytes(),
                        headers={"authorization": f"Bearer {token['token']}", "content-type": "video/mp4",
                                 "x-fal-file-name": "short.mp4"}).json()
        cases = {
            "short": {"prompt": "x", "video_url": up["access_url"]},
            "outside": {"prompt": "x", "video_url": "https://example.com/clip.mp4",
                        "image_urls": ["http://10.0.0.1/a.png"]},
        }
        answers = {}
        for name, body in cases.items():
            sub = http.post(f"{base}/fal-ai/kling-video/o1/standard/video-to-video/edit", json=body).json()
            poll(http, sub["status_url"], lambda doc: doc["status"] == "COMPLETED")
            answers[name] = http.get(sub["response_url"])
    short_answer = answers["short"]
    assert short_answer.status_code == 422
    (problem,) = short_answer.json()["detail"]
    assert problem["type"] == "video_duration_too_short" and problem["loc"] == ["body", "video_url"]
    assert problem["ctx"] == {"min_duration": 3.0} and problem["url"].startswith("https://docs.fal.ai/errors/")
    outside = answers["outside"].json()["detail"]
    assert [(p["loc"], p["type"]) for p in outside] == [(["body", "video_url"], "file_download_error"),
                                                        (["body", "image_urls", 0], "file_download_error")]


def test_cancel_through_our_client(kling_emulator: Any, sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    """A job that would never finish ([fail:timeout]) is cancelled by our client with fal's PUT."""
    from kling_core.contract.status import Cancelled

    with host_client(kling_emulator, tmp_path, "fal") as client:
        request = client.request(str(sample.video), "Make it night [fail:timeout]", quality="std")
        handle = client.submit(request)
        assert client.cancel(handle) is True
        deadline = time.monotonic() + 30
        status = client.status(handle)
        while not isinstance(status, Cancelled) and time.monotonic() < deadline:
            time.sleep(0.1)
            status = client.status(handle)
    assert isinstance(status, Cancelled), status
    assert any('"PUT ' in line and "/cancel" in line for line in kling_emulator.lines), kling_emulator.lines[-5:]
