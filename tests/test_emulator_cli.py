"""`kling emulate` as a user runs it: JSON first line, one line per host and per request, Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KLING_CONFIG_DIR": str(tmp_path / "cfg")}
    return subprocess.Popen([sys.executable, "-m", "kling_core", "emulate", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def test_emulate_prints_urls_logs_requests_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--json", "--render", "sample", "--state", str(tmp_path / "state"), "--hosts", "fal")
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        host_line = proc.stdout.readline()
        assert set(urls) == {"fal"} and urls["fal"].startswith("http://127.0.0.1:")
        assert host_line.startswith(f"fal  {urls['fal']}") and "base_url" in host_line and "FAL_QUEUE_RUN_HOST" in host_line
        answer = httpx.post(f"{urls['fal']}/fal-ai/kling-video/o1/video-to-video/edit", json={},
                            headers={"authorization": "Key anything"})
        assert answer.status_code == 422
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert '"POST /fal/fal-ai/kling-video/o1/video-to-video/edit" 422' in err
    assert "emulator stopped" in err and "Traceback" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["--bind", "0.0.0.0"], "not a loopback address"),
    (["--hosts", "fal,piapi"], "'piapi' is not a host the emulator knows"),
    (["--fail", "fal=nope"], "not a scripted failure"),
])
def test_emulate_refuses(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _start(tmp_path, *args)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:  # it started serving instead of refusing: never leave it running
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2 and message in err and "Traceback" not in err
