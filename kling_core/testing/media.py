"""Small sample media for behavioural contract tests, rendered with ffmpeg from a test pattern.

The defaults sit just inside the documented source limits (short side 720 px, 24 fps, a bit
over 3 s) so one render is cheap and every provider accepts it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import attrs


@attrs.frozen
class SampleMedia:
    video: Path
    image: Path


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(argv: list[str], timeout: float) -> None:
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RuntimeError(f"ffmpeg failed rendering sample media: {' | '.join(tail)}")


def render_sample_video(
    path: Path, *, width: int = 720, height: int = 720, fps: int = 24, seconds: float = 3.2, timeout: float = 120.0
) -> Path:
    """An H.264 MP4 test pattern with a silent AAC track (so keep_audio has something to keep)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
            "-f", "lavfi", "-i", f"anullsrc=channel_layout=mono:sample_rate=22050:d={seconds}",
            "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "32k", "-movflags", "+faststart", str(path),
        ],
        timeout,
    )
    return path


def render_sample_image(path: Path, *, width: int = 400, height: int = 400, timeout: float = 60.0) -> Path:
    """A PNG reference image inside the documented image limits (≥300 px, aspect 0.4–2.5)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"smptebars=size={width}x{height}", "-frames:v", "1", str(path),
        ],
        timeout,
    )
    return path


def render_sample_media(directory: Path) -> SampleMedia:
    return SampleMedia(
        video=render_sample_video(directory / "sample.mp4"),
        image=render_sample_image(directory / "reference.png"),
    )
