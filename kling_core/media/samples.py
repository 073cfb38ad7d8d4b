"""Generate sample media from ffmpeg's built-in sources (no input files, nothing untrusted).

``make_sample`` writes a clip with motion (``testsrc2``) and a sine tone, and two reference
images of distinct solid colours, so a rendered edit can be checked by sampling pixels.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import attrs

from kling_core.errors import MediaError
from kling_core.files import atomic_path
from kling_core.media.locate import find_ffmpeg

# RGB of the generated reference images, far apart in hue so a test can tell them apart.
IMAGE_COLOURS: tuple[tuple[int, int, int], ...] = ((230, 40, 40), (40, 90, 230), (40, 200, 70))
IMAGE_SIZE = 512
_TIMEOUT = 120.0


@attrs.frozen
class SampleMedia:
    video: Path
    images: tuple[Path, ...]
    colours: tuple[tuple[int, int, int], ...]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "0x{:02x}{:02x}{:02x}".format(*rgb)


def generate(ffmpeg: str, args: list[str], dest: Path, *, fmt: str, timeout: float = _TIMEOUT) -> Path:
    """Run ffmpeg on built-in sources and write ``dest`` atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, "-f", fmt, f"file:{tmp}"]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise MediaError(f"ffmpeg timed out generating {dest.name}") from None
        if proc.returncode != 0:
            raise MediaError(f"ffmpeg could not generate {dest.name}: {proc.stderr.decode(errors='replace')[-800:]}")
    return dest


def make_clip(
    dest: Path,
    *,
    duration: float = 3.2,
    size: tuple[int, int] = (1280, 720),
    fps: float = 24,
    audio: bool = True,
    ffmpeg: str | None = None,
) -> Path:
    """A clip with motion (and a 440 Hz tone when ``audio``): H.264 in MP4 (MOV for ``.mov``)."""
    ff = ffmpeg or find_ffmpeg()
    w, h = size
    args = ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={fps:g}:duration={duration:g}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration:g}"]
    args += ["-map", "0:v"] + (["-map", "1:a", "-c:a", "aac", "-b:a", "96k"] if audio else [])
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p", "-g", str(int(fps))]
    args += ["-t", f"{duration:g}", "-fflags", "+bitexact", "-map_metadata", "-1"]
    fmt = "mov" if dest.suffix.lower() == ".mov" else "mp4"
    return generate(ff, args, dest, fmt=fmt)


def make_image(dest: Path, rgb: tuple[int, int, int], *, size: int = IMAGE_SIZE, ffmpeg: str | None = None) -> Path:
    """A PNG (or JPEG for ``.jpg``): a solid colour with a thin white frame."""
    ff = ffmpeg or find_ffmpeg()
    border = max(2, size // 32)
    args = [
        "-f", "lavfi", "-i", f"color=c={_hex(rgb)}:size={size}x{size}:rate=1",
        "-vf", f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t={border}",
        "-frames:v", "1",
    ]
    jpeg = dest.suffix.lower() in (".jpg", ".jpeg")
    if jpeg:
        args += ["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj444p"]
    else:
        args += ["-c:v", "png", "-pix_fmt", "rgb24"]
    return generate(ff, args, dest, fmt="image2pipe")


def make_sample(
    directory: str | os.PathLike[str],
    *,
    duration: float = 3.2,
    size: tuple[int, int] = (1280, 720),
    fps: float = 24,
    audio: bool = True,
    images: int = 2,
    ffmpeg: str | None = None,
) -> SampleMedia:
    """Write ``clip.mp4`` and ``image1.png``… into ``directory``; return their paths."""
    d = Path(directory)
    ff = ffmpeg or find_ffmpeg()
    if not 0 <= images <= len(IMAGE_COLOURS):
        raise ValueError(f"images: 0–{len(IMAGE_COLOURS)} supported")
    video = make_clip(d / "clip.mp4", duration=duration, size=size, fps=fps, audio=audio, ffmpeg=ff)
    colours = IMAGE_COLOURS[:images]
    paths = tuple(make_image(d / f"image{i + 1}.png", rgb, ffmpeg=ff) for i, rgb in enumerate(colours))
    return SampleMedia(video=video, images=paths, colours=colours)
