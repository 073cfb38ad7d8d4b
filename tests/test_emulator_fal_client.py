"""The real fal-client (PyPI, 1.0.3) against `kling emulate` over https: it cannot tell.

fal-client reads FAL_RUN_HOST/FAL_QUEUE_RUN_HOST when imported and hard-codes its storage hosts
(REST_URL, CDN_URL), so in-process ``RunningEmulator.fal_client()`` sets exactly those module
constants, the key and SSL_CERT_FILE (docs/emulator.md says so). The subprocess test below
uses the environment variables alone, as an unmodified application would.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.media import SampleMedia

fal_client = pytest.importorskip("fal_client")
pytestmark = [pytest.mark.ffmpeg, pytest.mark.kling_emulator(tls=True, render="fast")]
MODEL = "fal-ai/kling-video/o1/standard/video-to-video/edit"
APP = "fal-ai/kling-video"


def test_upload_submit_status_result_cancel_subscribe_run(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import fal_client.client as fc

    with kling_emulator.fal_client() as client:
        video_url = client.upload_file(sample.video)
        image_url = client.upload_file(sample.images[0])
        assert video_url.startswith(kling_emulator.urls["fal"] + "/cdn/files/")
        # Multipart, as fal-client does above 100 MiB (threshold lowered: 4 parts of 512 KiB).
        monkeypatch.setattr(fc, "MULTIPART_THRESHOLD", 1024 * 1024)
        monkeypatch.setattr(fc, "MULTIPART_CHUNK_SIZE", 512 * 1024)
        multipart_url = client.upload_file(sample.video)
        monkeypatch.undo()
        with httpx.Client(verify=ssl.create_default_context(cafile=str(kling_emulator.ca_file))) as http:
            assert http.get(multipart_url).content == sample.video.read_bytes()

        args = {"prompt": "Regrade with @Image1", "video_url": video_url, "image_urls": [image_url]}
        handle = client.submit(MODEL, args)
        first = handle.status(with_logs=True)
        assert isinstance(first, (fal_client.Queued, fal_client.InProgress))
        result = handle.get()
        assert result["video"]["content_type"] == "video/mp4" and result["video"]["file_size"] > 0
        done = client.status(MODEL, handle.request_id, with_logs=True)
        assert isinstance(done, fal_client.Completed) and done.error is None
        assert done.logs and {"message", "level", "source", "timestamp"} <= set(done.logs[0])
        assert client.result(MODEL, handle.request_id) == result

        # The same request gives the same file; subscribe and the synchronous run agree.
        updates: list[Any] = []
        again = client.subscribe(MODEL, args, with_logs=True, on_queue_update=updates.append)
        assert again == result and any(isinstance(u, fal_client.Completed) for u in updates)
        assert client.run(MODEL, args) == result

        hung = client.submit(MODEL, {"prompt": "wait [fail:timeout]", "video_url": video_url})
        hung.cancel()
        cancelled = hung.status()
        assert isinstance(cancelled, fal_client.Completed) and cancelled.error_type == "client_cancelled"
        with pytest.raises(fal_client.FalClientHTTPError) as info:
            hung.cancel()
        assert info.value.status_code == 400  # ALREADY_COMPLETED

        with pytest.raises(fal_client.FalClientHTTPError) as info:
            client.submit(MODEL, {"prompt": 3, "video_url": video_url})
        assert info.value.status_code == 422 and info.value.message[0]["type"] == "string_type"

        bad = fc.SyncClient(key="not-the-test-key")
        with pytest.raises(fal_client.FalClientHTTPError) as info:
            bad.submit(MODEL, args)
        assert info.value.status_code == 401 and info.value.message == "Unauthorized"
    assert not [line for line in kling_emulator.lines if "Traceback" in line or '" 500 ' in line]


def test_an_unmodified_app_with_environment_variables_only(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                           tmp_path: Path) -> None:
    base = kling_emulator.urls["fal"]
    script = textwrap.dedent(f"""
        import fal_client, fal_client.client as fc
        fc.REST_URL, fc.CDN_URL = {base + "/rest"!r}, {base + "/cdn"!r}  # hard-coded in fal-client
        url = fal_client.upload_file({str(sample.video)!r})
        out = fal_client.subscribe({MODEL!r}, {{"prompt": "make it dusk", "video_url": url}})
        print(out["video"]["url"])
    """)
    env = {**os.environ, **kling_emulator.environ()}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(base + "/cdn/files/")
