"""The hardened ffmpeg runner: argv shape, atomic output, timeout and cancellation clean-up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from media_fixtures import LoopbackServer, loopback, sample, write_playlist

from kling_core.errors import ConfigError, MediaError
from kling_core.media import FfmpegInput, SampleMedia, find_ffmpeg, run_ffmpeg
from kling_core.media.formats import IMAGE_FORMATS, VIDEO_FORMATS
from kling_core.media.runner import build_argv
from kling_core.settings import MediaSettings

__all__ = ["loopback", "sample"]

COPY_ARGS = ["-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-an"]


def test_argv_whitelists_every_input(tmp_path: Path) -> None:
    inputs = [
        FfmpegInput(tmp_path / "a b.mp4", VIDEO_FORMATS, format="mov"),
        FfmpegInput(tmp_path / "http:evil.png", IMAGE_FORMATS, format="png_pipe"),
    ]
    argv = build_argv("/usr/bin/ffmpeg", inputs, ["-an"], tmp_path / "out.mp4")
    assert argv[:2] == ["/usr/bin/ffmpeg", "-nostdin"]
    i_positions = [i for i, a in enumerate(argv) if a == "-i"]
    assert len(i_positions) == 2
    starts = [0, *i_positions]
    for n, pos in enumerate(i_positions):
        opts = argv[starts[n] : pos]
        assert opts[opts.index("-protocol_whitelist") + 1] == "file"
        assert "-format_whitelist" in opts and "-threads" in opts and "-f" in opts
        assert argv[pos + 1].startswith("file:/")  # absolute, and never read as a protocol
    assert argv[-1] == f"file:{(tmp_path / 'out.mp4').resolve()}"


def test_find_ffmpeg_order(tmp_path: Path) -> None:
    default = find_ffmpeg(MediaSettings(), environ={})
    assert os.access(default, os.X_OK)
    with pytest.raises(ConfigError, match=r"^media\.ffmpeg: ffmpeg not found at "):
        find_ffmpeg(MediaSettings(ffmpeg=str(tmp_path / "nope")), environ={"KLING_FFMPEG": default})
    with pytest.raises(ConfigError, match=r"^KLING_FFMPEG: ffmpeg not found"):
        find_ffmpeg(MediaSettings(), environ={"KLING_FFMPEG": str(tmp_path / "nope")})
    assert find_ffmpeg(MediaSettings(ffmpeg=default), environ={"KLING_FFMPEG": str(tmp_path / "x")}) == default
    assert find_ffmpeg(MediaSettings(), environ={"KLING_FFMPEG": default}) == default


@pytest.mark.ffmpeg
def test_success_writes_atomically_and_reports_progress(sample: SampleMedia, tmp_path: Path) -> None:
    seen: list[float] = []
    out = tmp_path / "out" / "clip.mp4"
    result = asyncio.run(run_ffmpeg(
        find_ffmpeg(),
        [FfmpegInput(sample.video, VIDEO_FORMATS, format="mov")],
        [*COPY_ARGS, "-vf", "scale=320:180"],
        out,
        timeout=60,
        on_progress=seen.append,
    ))
    assert result == out and out.stat().st_size > 0
    assert os.listdir(out.parent) == ["clip.mp4"]
    assert seen and seen == sorted(seen) and seen[-1] >= 3.0


@pytest.mark.ffmpeg
def test_failure_leaves_nothing(sample: SampleMedia, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"ffmpeg failed \(exit"):
        asyncio.run(run_ffmpeg(
            find_ffmpeg(),
            [FfmpegInput(sample.video, VIDEO_FORMATS)],
            ["-vf", "no_such_filter"],
            tmp_path / "out.mp4",
            timeout=60,
        ))
    assert os.listdir(tmp_path) == []


@pytest.mark.ffmpeg
def test_disguised_playlist_is_refused_by_ffmpeg_too(tmp_path: Path, loopback: LoopbackServer) -> None:
    (loopback.root / "seg.ts").write_bytes(b"\x47" * 188 * 4)
    evil = write_playlist(tmp_path / "evil.m3u8.mp4", loopback.url("seg.ts"))
    with pytest.raises(MediaError):
        asyncio.run(
            run_ffmpeg(find_ffmpeg(), [FfmpegInput(evil, VIDEO_FORMATS)], COPY_ARGS, tmp_path / "o.mp4", timeout=30)
        )
    assert loopback.hits == []
    assert not (tmp_path / "o.mp4").exists()


def _spy_processes(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []

    class Spy(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            procs.append(self)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    return procs


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.ffmpeg
def test_timeout_kills_and_reaps_the_child_and_removes_temp_files(
    sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    procs = _spy_processes(monkeypatch)
    # -re reads at the native frame rate, so this job needs >3 s: far over the 0.5 s limit.
    slow = FfmpegInput(sample.video, VIDEO_FORMATS, options=("-re",))
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"timed out after 0\.5s and was killed"):
        asyncio.run(run_ffmpeg(find_ffmpeg(), [slow], COPY_ARGS, tmp_path / "out.mp4", timeout=0.5))
    assert time.monotonic() - started < 2.5
    assert len(procs) == 1
    assert procs[0].returncode is not None  # reaped: wait() returned
    assert _gone(procs[0].pid)
    assert os.listdir(tmp_path) == []


@pytest.mark.ffmpeg
def test_cancellation_kills_the_child(sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    procs = _spy_processes(monkeypatch)
    slow = FfmpegInput(sample.video, VIDEO_FORMATS, options=("-re",))

    async def go() -> None:
        task = asyncio.ensure_future(run_ffmpeg(find_ffmpeg(), [slow], COPY_ARGS, tmp_path / "out.mp4", timeout=60))
        await asyncio.sleep(0.6)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert procs and procs[0].returncode is not None and _gone(procs[0].pid)
    assert os.listdir(tmp_path) == []


@pytest.mark.ffmpeg
def test_disguised_concat_list_is_refused_by_ffmpeg(sample: SampleMedia, tmp_path: Path) -> None:
    from media_fixtures import write_concat

    evil = write_concat(tmp_path / "cc.mp4", sample.video)
    with pytest.raises(MediaError):
        asyncio.run(
            run_ffmpeg(find_ffmpeg(), [FfmpegInput(evil, VIDEO_FORMATS)], COPY_ARGS, tmp_path / "o.mp4", timeout=30)
        )
    assert sorted(os.listdir(tmp_path)) == ["cc.mp4"]


@pytest.mark.ffmpeg
def test_the_format_whitelist_is_what_refuses(sample: SampleMedia, tmp_path: Path) -> None:
    # A perfectly good PNG is refused when only video demuxers are allowed, and accepted with
    # the image whitelist: the refusal comes from -format_whitelist, not from a broken file.
    still = ["-frames:v", "1", "-c:v", "png"]
    with pytest.raises(MediaError, match="whitelist"):
        asyncio.run(run_ffmpeg(find_ffmpeg(), [FfmpegInput(sample.images[0], VIDEO_FORMATS)], still,
                               tmp_path / "a.png", timeout=30, output_format="image2pipe"))
    asyncio.run(run_ffmpeg(find_ffmpeg(), [FfmpegInput(sample.images[0], IMAGE_FORMATS)], still,
                           tmp_path / "b.png", timeout=30, output_format="image2pipe"))
    assert sorted(os.listdir(tmp_path)) == ["b.png"]
