"""What the mock does to a clip, and the single ffmpeg pass that does it.

The plan is pure data computed from the request and the probed inputs (so a dry run can show
it and tests can predict pixels); ``output_args`` turns it into ffmpeg arguments.

Rules (also in docs/mock.md):
- size: the short side becomes 720 (std) or 1080 (pro), the aspect ratio is kept, both sides even;
- grade: a hue rotation and saturation derived from a hash of the prompt, model and mode;
- tiles: each image, then each element's frontal image, is drawn as a square tile in a fixed
  corner (top-left, top-right, bottom-left, bottom-right) on top of the graded picture;
- audio: the source's first audio track re-encoded to AAC when ``keep_audio``, otherwise none;
- duration and frame rate follow the input.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from kling_core.sdk import (
    IMAGE_FORMATS,
    VIDEO_FORMATS,
    EditRequest,
    FfmpegInput,
    ImageInfo,
    VideoInfo,
)
from kling_core_plugins.mock.capabilities import OUTPUT_SHORT_SIDE

SLOTS: tuple[str, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")
TILE_FRACTION = 0.2  # tile side, as a fraction of the output's short side
MARGIN_FRACTION = 0.03
# x264 settings fixed so the same input gives the same bytes on every run.
ENCODER_THREADS = 2
VIDEO_CODEC_ARGS: tuple[str, ...] = (
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
    "-threads", str(ENCODER_THREADS),
)
AUDIO_CODEC_ARGS: tuple[str, ...] = ("-c:a", "aac", "-b:a", "128k")
BITEXACT_ARGS: tuple[str, ...] = (
    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
    "-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart",
)
MAX_OUTPUT_BYTES = 1024**3


def _even(x: float) -> int:
    return max(2, round(x / 2.0) * 2)


@attrs.frozen
class Grade:
    hue: int  # degrees
    saturation: float
    seed: str  # the hash prefix it came from

    @classmethod
    def for_request(cls, request: EditRequest) -> Grade:
        digest = hashlib.sha256(
            "\0".join((request.prompt, request.model, request.edit_mode)).encode()
        ).digest()
        hue = 30 + int.from_bytes(digest[:2], "big") % 300  # never ~0°: the edit must show
        saturation = 1.0 + (digest[2] % 51) / 100
        return cls(hue=hue, saturation=round(saturation, 2), seed=digest[:4].hex())


@attrs.frozen
class Tile:
    source: str  # request field, e.g. "images[0]" or "elements[1].frontal_image"
    kind: str  # image | element
    ref: str  # the prompt reference it stands for, e.g. "@Image1"
    path: str
    demuxer: str
    slot: str
    x: int
    y: int
    size: int


@attrs.frozen
class RenderPlan:
    width: int
    height: int
    fps: float
    duration: float
    quality: str
    grade: Grade
    tiles: tuple[Tile, ...]
    keep_audio: bool
    source_has_audio: bool

    @property
    def audio_out(self) -> bool:
        return self.keep_audio and self.source_has_audio

    def report(self) -> dict[str, Any]:
        audio: dict[str, Any] = {"kept": self.audio_out, "codec": "aac" if self.audio_out else None}
        if self.keep_audio and not self.source_has_audio:
            audio["note"] = "keep_audio was set but the source has no audio track"
        return {
            "grade": {"hue_degrees": self.grade.hue, "saturation": self.grade.saturation, "seed": self.grade.seed},
            "tiles": [
                {"source": t.source, "kind": t.kind, "ref": t.ref, "slot": t.slot, "x": t.x, "y": t.y, "size": t.size}
                for t in self.tiles
            ],
            "audio": audio,
            "output": {"width": self.width, "height": self.height, "fps": self.fps, "quality": self.quality},
        }


def output_size(width: int, height: int, quality: str) -> tuple[int, int]:
    target = OUTPUT_SHORT_SIDE[quality]
    scale = target / min(width, height)
    return _even(width * scale), _even(height * scale)


def plan(
    request: EditRequest,
    video: VideoInfo,
    images: list[ImageInfo],
    frontals: list[ImageInfo],
) -> RenderPlan:
    """``images`` are the request's images, ``frontals`` its elements' frontal images, probed."""
    w, h = output_size(video.width, video.height, request.quality)
    short = min(w, h)
    size = _even(short * TILE_FRACTION)
    margin = _even(short * MARGIN_FRACTION)
    corners = {
        "top-left": (margin, margin),
        "top-right": (w - margin - size, margin),
        "bottom-left": (margin, h - margin - size),
        "bottom-right": (w - margin - size, h - margin - size),
    }
    sources: list[tuple[str, str, str, ImageInfo]] = [
        (f"images[{i}]", "image", f"@Image{i + 1}", info) for i, info in enumerate(images)
    ] + [
        (f"elements[{i}].frontal_image", "element", f"@Element{i + 1}", info) for i, info in enumerate(frontals)
    ]
    if len(sources) > len(SLOTS):  # the capability check caps references at 4 first
        raise ValueError(f"at most {len(SLOTS)} references can be drawn, got {len(sources)}")
    tiles = tuple(
        Tile(source=src, kind=kind, ref=ref, path=info.path, demuxer=info.demuxer, slot=slot,
             x=corners[slot][0], y=corners[slot][1], size=size)
        for (src, kind, ref, info), slot in zip(sources, SLOTS, strict=False)
    )
    return RenderPlan(
        width=w,
        height=h,
        fps=video.fps,
        duration=video.duration,
        quality=request.quality,
        grade=Grade.for_request(request),
        tiles=tiles,
        keep_audio=request.keep_audio,
        source_has_audio=video.has_audio,
    )


def inputs(p: RenderPlan, video: VideoInfo) -> list[FfmpegInput]:
    out = [FfmpegInput(video.path, VIDEO_FORMATS, format=video.demuxer)]
    out += [FfmpegInput(t.path, IMAGE_FORMATS, format=t.demuxer) for t in p.tiles]
    return out


def filter_graph(p: RenderPlan) -> str:
    g = p.grade
    chains = [f"[0:v]scale={p.width}:{p.height}:flags=bicubic,setsar=1,hue=h={g.hue}:s={g.saturation}[g0]"]
    for i, t in enumerate(p.tiles, start=1):
        chains.append(f"[{i}:v]scale={t.size}:{t.size}:flags=bicubic,setsar=1,format=yuv420p[t{i}]")
        chains.append(f"[g{i - 1}][t{i}]overlay=x={t.x}:y={t.y}:eof_action=repeat[g{i}]")
    chains.append(f"[g{len(p.tiles)}]format=yuv420p[v]")
    return ";".join(chains)


def output_args(p: RenderPlan) -> list[str]:
    args = ["-filter_complex", filter_graph(p), "-map", "[v]"]
    args += ["-map", "0:a:0", *AUDIO_CODEC_ARGS] if p.audio_out else ["-an"]
    args += [*VIDEO_CODEC_ARGS, "-sn", "-dn", *BITEXACT_ARGS]
    args += ["-t", f"{p.duration:.6f}", "-fs", str(MAX_OUTPUT_BYTES)]
    return args
