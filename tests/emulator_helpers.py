"""Set-up shared by the ``kling emulate`` end-to-end tests (tests/test_emulator_*.py).

The emulator itself comes from the ``kling_emulator`` fixture; these are the pieces around it:
the CLI as a child process with its own state, an ``EditClient`` pointed at one emulated host,
the mock's render of the same request (the bytes every host must give back), and polling a
host's own status URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback_servers import serve_folder

from kling_core.client import EditClient
from kling_core.config import config_from_document
from kling_core.errors import KlingError, ProviderError
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia

PROMPT = "Regrade the scene in the colours of @Image1"
FAST_POLL = {"initial": 0.05, "max": 0.2}


def kling(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``kling ARGS`` as a child process in ``cwd``, with its config, state and cache under ``cwd``."""
    full_env = {**os.environ, **env, "KLING_CONFIG_DIR": str(cwd / "user-config"),
                "KLING_STATE_DIR": str(cwd / "state"), "KLING_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def host_client(emu: Any, tmp: Path, provider: str) -> EditClient:
    """An ``EditClient`` on ``provider`` pointed at the emulator, polling fast, its job log under ``tmp``."""
    url = emu.urls[provider]
    settings: dict[str, Any] = {"base_url": url, "poll": FAST_POLL}
    if provider == "fal":
        settings["options"] = {"storage_url": f"{url}/rest", "cdn_url": f"{url}/cdn"}
    doc = {"media": {"allow_private_urls": True}, "providers": {provider: settings}}
    return EditClient(provider=provider, config=config_from_document(doc), environ=emu.environ(),
                      journal=JobLog(tmp / "state"))


def edit_by_url(emu: Any, provider: str, sample: SampleMedia, cwd: Path) -> tuple[dict[str, Any], bytes]:
    """``kling edit --provider PROVIDER --json`` of the sample (served by URL) with PROMPT and its
    first image, std; (the JSON result, the output's bytes). Fails the test if the command fails."""
    config = emu.kling_config(f"[providers.{provider}.poll]", "initial = 0.1", "max = 0.3")
    (cwd / "kling.toml").write_text(config)
    with serve_folder(sample.video.parent) as files:
        video_url = f"{files}/{sample.video.name}"
        image_url = f"{files}/{sample.images[0].relative_to(sample.video.parent).as_posix()}"
        done = kling(["edit", video_url, "-p", PROMPT, "--image", image_url, "--quality", "std",
                      "--provider", provider, "-o", "out.mp4", "--json", "--config", "kling.toml"],
                     cwd, emu.environ())
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result, (cwd / "out.mp4").read_bytes()


def mock_render(mock_client: EditClient, sample: SampleMedia, tmp: Path) -> bytes:
    """What the offline mock renders for the request :func:`edit_by_url` sends."""
    mock = mock_client.edit(mock_client.request(str(sample.video), PROMPT, images=[str(sample.images[0])],
                                                quality="std"), output=tmp / "mock.mp4")
    assert mock.video.path is not None
    return Path(mock.video.path).read_bytes()


def poll(http: httpx.Client, url: str, finished: Callable[[Any], bool]) -> Any:
    """GET ``url`` until ``finished(its JSON)``; that JSON (fails the test after about 20 s)."""
    for _ in range(400):
        doc = http.get(url).json()
        if finished(doc):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"not finished: {doc}")



def edit_matches_mock(emu: Any, provider: str, mock_client: EditClient, sample: SampleMedia,
                      cwd: Path) -> tuple[dict[str, Any], str]:
    """:func:`edit_by_url` gives the very bytes the mock renders for the same request, with no
    traceback or 500 in the emulator's log; (the JSON result, that log as one text)."""
    result, host_bytes = edit_by_url(emu, provider, sample, cwd)
    assert result["provider"] == provider and result["job_id"]
    assert host_bytes == mock_render(mock_client, sample, cwd)
    lines = "\n".join(emu.lines)
    assert "Traceback" not in lines and '" 500 ' not in lines
    return result, lines


def submit_is_uncertain_and_never_resent(client: EditClient, provider: str, video: str, out: Path) -> None:
    """A submit the host answers 500 (``[fail:server_error]``) leaves the job uncertain, and the
    same edit again is refused without a second submit (the caller counts the host's submits)."""
    request = client.request(video, "Make it night [fail:server_error]", quality="std")
    with pytest.raises(ProviderError) as info:
        client.edit(request, output=out)
    record = client.jobs(provider=provider)[0]
    with pytest.raises(KlingError) as again:  # the job may exist upstream: never submitted twice
        client.edit(request, output=out)
    assert info.value.status_code == 500 and "NOT resubmitted" in str(info.value)
    assert record.state == "uncertain" and "uncertain" in str(again.value), again.value
