"""`kling edit` end to end through the mock, as a user runs it: output, JSON, Ctrl-C, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media_fixtures import LoopbackServer, long_4k_clip, loopback, sample, short_clip, write_playlist

from kling_core.media import SampleMedia, probe_video

__all__ = ["long_4k_clip", "loopback", "sample", "short_clip"]
pytestmark = pytest.mark.ffmpeg


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "KLING_PLUGINS": "mock", **(env or {})})


def test_edit_writes_the_output_and_prints_its_path(sample: SampleMedia, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = run("edit", str(sample.video), "-p", "warm it up like @Image1", "--image", str(sample.images[0]),
               "--quality", "std", "--keep-audio", "-o", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["video"]["path"] == str(out) and doc["provider"] == "mock"
    info = probe_video(out)
    assert min(info.width, info.height) == 720 and info.has_audio
    # Not a terminal: plain progress lines on stderr, in order.
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("submitted mock job ") and lines[-1] == "succeeded"
    # The job can be looked up again by id.
    status = run("status", "mock", doc["job_id"], "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["state"] == "succeeded"


def test_ctrl_c_cancels_a_cancellable_job_and_leaves_no_output(sample: SampleMedia, tmp_path: Path) -> None:
    env = {**os.environ, "KLING_PLUGINS": "mock"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_core", "edit", str(sample.video), "-p", "x", "-O", "latency=60",
         "-o", str(tmp_path / "out.mp4")],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline and "submitted" not in line:
        line = proc.stderr.readline()
    job_id = line.split()[-1]
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"cancelled mock job {job_id}" in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()
    status = run("status", "mock", job_id, cwd=tmp_path)
    assert status.stdout.strip() == "cancelled"


@pytest.mark.parametrize("case", ["not-a-video", "2s", "60s-4k", "playlist", "loopback-url"])
def test_media_a_host_would_refuse_exits_2_with_one_message(
    case: str, request: pytest.FixtureRequest, tmp_path: Path, loopback: LoopbackServer
) -> None:
    if case == "not-a-video":
        video, needle = tmp_path / "notes.mp4", "video: not a readable video"
        video.write_text("these are notes, not a video\n" * 50)
    elif case == "2s":
        video, needle = request.getfixturevalue("short_clip"), "video: 2.0 s long, at least 3 s"
    elif case == "60s-4k":
        video, needle = request.getfixturevalue("long_4k_clip"), "video: 60.0 s long, at most 10.05 s"
    elif case == "playlist":
        video, needle = write_playlist(tmp_path / "evil.mp4", loopback.url("seg.ts")), "video: is a playlist or concat list"
    else:
        sample_clip = request.getfixturevalue("sample").video
        (loopback.root / "clip.mp4").write_bytes(Path(sample_clip).read_bytes())
        video, needle = loopback.url("clip.mp4"), "video: refusing to fetch 127.0.0.1"
    out = tmp_path / "out.mp4"
    proc = run("edit", str(video), "-p", "x", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.mp4.*"))
    assert loopback.hits == []
