"""A contact sheet: frames of an edit's input and output, side by side at the same times.

Layout: two rows of ``frames`` tiles, the input on top and the output below; tile ``i`` of
both rows is taken at the same time, ``(i + 0.5) / frames`` of the shorter duration. Every
tile is scaled (letterboxed) into the same box. A caption band under the rows carries the
prompt and settings when ffmpeg has ``drawtext`` and a font is found; otherwise the sheet has
no band and :attr:`Sheet.captioned` is False (the CLI then prints the caption).

Rendered by one ffmpeg run through :func:`kling_core.media.runner.run_ffmpeg` (whitelisted
``file:`` inputs, timeout, atomic write of the PNG).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
import textwrap
from pathlib import Path

import attrs

from kling_core.errors import ValidationError
from kling_core.media.formats import VIDEO_FORMATS
from kling_core.media.probe import VideoInfo, probe_video
from kling_core.media.runner import FfmpegInput, run_ffmpeg

MAX_FRAMES = 12
TILE_HEIGHT = 180
FONT_SIZE = 16
FONT_ENV = "KLING_FONT"
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
)
# Paths put into the filter graph unescaped must be plain (no quote, colon, comma, bracket...).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")
_TIMEOUT = 120.0
_MAX_LINES = 12


@attrs.frozen
class Sheet:
    path: Path
    width: int
    height: int
    times: tuple[float, ...]
    caption: str
    captioned: bool  # the caption is drawn in the picture


def sample_times(duration_a: float, duration_b: float, frames: int) -> tuple[float, ...]:
    """``frames`` times evenly spaced through the shorter duration (mid-points of equal parts)."""
    shorter = max(0.0, min(duration_a, duration_b))
    return tuple(round(shorter * (i + 0.5) / frames, 3) for i in range(frames))


def find_font(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    chosen = env.get(FONT_ENV, "").strip()
    for candidate in ([chosen] if chosen else []) + list(_FONT_CANDIDATES):
        if os.path.isfile(candidate) and _PLAIN_PATH.fullmatch(candidate):
            return candidate
    return None


@functools.cache
def has_drawtext(ffmpeg: str) -> bool:
    try:
        proc = subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-filters"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.split()[1:2] == [b"drawtext"] for line in proc.stdout.splitlines())


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _wrap(caption: str, width_px: int) -> list[str]:
    per_line = max(20, int(width_px / (FONT_SIZE * 0.6)))
    paras = [textwrap.wrap(para, per_line) or [""] for para in caption.splitlines() or [""]]
    last = paras[-1][:_MAX_LINES // 2] if len(paras) > 1 else []  # the settings line survives a long prompt
    lines = [line for para in (paras[:-1] if last else paras) for line in para]
    room = _MAX_LINES - len(last)
    if len(lines) > room:
        lines = [*lines[: room - 1], lines[room - 1][: per_line - 1] + "…"]
    return lines + last


async def render_sheet(
    ffmpeg: str,
    source: str | os.PathLike[str],
    edited: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    frames: int = 4,
    caption: str = "",
    font: str | None = None,
    timeout: float = _TIMEOUT,
) -> Sheet:
    """Probe both videos (ValidationError when either is not a readable video) and write the PNG."""
    if not 1 <= frames <= MAX_FRAMES:
        raise ValidationError.single("frames", f"{frames} must be 1–{MAX_FRAMES}")
    a: VideoInfo = probe_video(source, "INPUT")
    b: VideoInfo = probe_video(edited, "OUTPUT")
    times = sample_times(a.duration, b.duration, frames)
    tile_w, tile_h = _even(TILE_HEIGHT * a.width / a.height), TILE_HEIGHT
    width, rows_h = tile_w * frames, tile_h * 2
    inputs: list[FfmpegInput] = []
    parts: list[str] = []
    box = (f"scale={tile_w}:{tile_h}:force_original_aspect_ratio=decrease,"
           f"pad={tile_w}:{tile_h}:(ow-iw)/2:(oh-ih)/2:black,setsar=1,format=rgb24")
    for row, info in enumerate((a, b)):
        for i, t in enumerate(times):
            n = len(inputs)
            inputs.append(FfmpegInput(Path(info.path), VIDEO_FORMATS, info.demuxer, ("-ss", f"{t:.3f}")))
            parts.append(f"[{n}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS,{box}[t{row}_{i}]")
        tiles = "".join(f"[t{row}_{i}]" for i in range(frames))
        parts.append(f"{tiles}hstack=inputs={frames}[row{row}]" if frames > 1 else f"{tiles}null[row{row}]")
    parts.append("[row0][row1]vstack=inputs=2[rows]")
    caption = caption.strip()
    use_font = font if font is not None else find_font()
    captioned = bool(caption and use_font and _PLAIN_PATH.fullmatch(use_font) and has_drawtext(ffmpeg))
    with tempfile.TemporaryDirectory(prefix="kling-sheet-") as tmp:
        height = rows_h
        last = "[rows]"
        textfile = Path(tmp) / "caption.txt"
        if captioned and _PLAIN_PATH.fullmatch(str(textfile)):
            lines = _wrap(caption, width - 16)
            line_h = int(FONT_SIZE * 1.4)
            band = _even(len(lines) * line_h + 16)
            height = rows_h + band
            textfile.write_text("\n".join(lines), encoding="utf-8")
            parts.append(
                f"[rows]pad={width}:{height}:0:0:0x202020,"
                f"drawtext=fontfile={use_font}:textfile={textfile}:expansion=none:fontsize={FONT_SIZE}:"
                f"line_spacing={line_h - FONT_SIZE}:fontcolor=white:x=8:y={rows_h + 8}[sheet]"
            )
            last = "[sheet]"
        else:
            captioned = False
        graph = ";".join(parts)
        await run_ffmpeg(
            ffmpeg, inputs,
            ["-filter_complex", graph, "-map", last, "-frames:v", "1", "-c:v", "png", "-pix_fmt", "rgb24"],
            Path(dest), timeout=timeout, output_format="image2pipe",
        )
    return Sheet(path=Path(dest), width=width, height=height, times=times, caption=caption, captioned=captioned)
