"""Probe media with PyAV (libavformat in-process): no ffprobe binary, no text scraping.

Each open names the accepted demuxers and the ``file`` protocol only, so a playlist or concat
list in disguise is refused before it can reach another file or URL.
"""

from __future__ import annotations

import collections
import contextlib
import os
import stat
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs

from kling_core.errors import UnsafeMediaError, ValidationError
from kling_core.media.formats import (
    CONTAINER_NAMES,
    IMAGE_FORMATS,
    MOV_DEMUXER,
    OTHER_SAFE_FORMATS,
    REFERENCE_LIST_MAGIC,
    VIDEO_FORMATS,
    whitelist,
)
from kling_core.media.stamp import Stamp, file_stamp

# libavformat error codes as PyAV surfaces them (errno attribute).
_EINVAL = 22
# A declared picture larger than 8K is refused before anything is decoded (decompression bomb).
MAX_PIXELS = 7680 * 4320
# Reading a few seconds of a hostile header must not hang a probe.
_PROBE_OPTIONS = {"probesize": "5000000", "analyzeduration": "5000000"}


@attrs.frozen
class VideoInfo:
    path: str
    container: str  # canonical: mp4 | mov | matroska
    demuxer: str  # ffmpeg's demuxer name, passed back to ffmpeg as -f
    duration: float  # seconds
    width: int
    height: int
    fps: float
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    size_bytes: int

    @property
    def frame_duration(self) -> float:
        return 1.0 / self.fps if self.fps > 0 else 0.0


@attrs.frozen
class ImageInfo:
    path: str
    format: str  # canonical: png | jpeg
    demuxer: str  # png_pipe | jpeg_pipe
    width: int
    height: int
    size_bytes: int


def _open(path: Path, formats: tuple[str, ...], format: str | None = None) -> Any:
    import av

    options = {"protocol_whitelist": "file", "format_whitelist": whitelist(formats), **_PROBE_OPTIONS}
    return av.open(str(path), mode="r", format=format, options=options)


_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = ((b"\x89PNG\r\n\x1a\n", "png_pipe"), (b"\xff\xd8\xff", "jpeg_pipe"))


def _image_demuxer(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(8)
    for magic, demuxer in _IMAGE_SIGNATURES:
        if head.startswith(magic):
            return demuxer
    return None


def _looks_like_reference_list(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return any(head.startswith(m) for m in REFERENCE_LIST_MAGIC) or b"#EXT-X-" in head


def _refuse(path: Path, field: str, kind: str, exc: Exception | None) -> Exception:
    """The error for a file the whitelist (or the demuxers) would not open."""
    import av

    if _looks_like_reference_list(path):
        return UnsafeMediaError(
            "is a playlist or concat list, not a media file (refused: it would make ffmpeg read other files or URLs)",
            field=field,
        )
    other = tuple(f for f in (*VIDEO_FORMATS, *IMAGE_FORMATS, *OTHER_SAFE_FORMATS))
    try:
        container = _open(path, other)
    except av.FFmpegError:
        container = None
    if container is not None:
        try:
            found = CONTAINER_NAMES.get(container.format.name, container.format.name)
        finally:
            container.close()
        return ValidationError.single(field, f"not a readable {kind} file (it is {found})")
    if getattr(exc, "errno", None) == _EINVAL:
        # libavformat recognised a container, but one on no whitelist.
        return UnsafeMediaError(f"container format is not on the {kind} whitelist", field=field)
    return ValidationError.single(field, f"not a readable {kind} file")


def _check_file(path: Path, field: str) -> int:
    if not path.exists():
        raise ValidationError.single(field, f"file not found: {path}")
    if not path.is_file():
        raise ValidationError.single(field, f"not a regular file: {path}")
    return os.stat(path).st_size


def probe_video(path: str | os.PathLike[str], field: str = "video", *, decode: bool = True) -> VideoInfo:
    """Duration, size, rate and codecs of a local video, refusing anything off the whitelist.

    ``decode`` also decodes the first frame, proving the stream readable (skip it only for
    files this process just wrote itself). A file probed before in this process and unchanged
    since (same device, inode, size, mtime and ctime) is not opened again: an edit's input is
    asked about by the price estimate, the provider's checks and the result's verification.
    """
    before = _identity(path)
    found = _remembered(before, decode)
    if found is not None:
        return found
    with open_video(path, field) as (container, stream, info):
        if decode:
            _decode_one_frame(container, stream, field)
    if before is not None and _identity(path) == before:  # not replaced while it was read
        _remember(before, info, decode)
    return info


# Probes of unchanged files, per process: (stamp of the path as given, decoded) -> info, oldest first.
_PROBED: collections.OrderedDict[tuple[Stamp, bool], VideoInfo] = collections.OrderedDict()
_PROBED_KEEP = 64
_probed_lock = threading.Lock()


def _identity(path: str | os.PathLike[str]) -> Stamp | None:
    """The path and what changes when the file does (ctime cannot be set back); None if it
    cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return file_stamp(os.fspath(path), st)


def _remembered(identity: Stamp | None, decode: bool) -> VideoInfo | None:
    if identity is None:
        return None
    with _probed_lock:
        for key in ((identity, True), (identity, False)) if not decode else ((identity, True),):
            info = _PROBED.get(key)
            if info is not None:
                _PROBED.move_to_end(key)
                return info
    return None


def _remember(identity: Stamp, info: VideoInfo, decode: bool) -> None:
    with _probed_lock:
        _PROBED[(identity, decode)] = info
        _PROBED.move_to_end((identity, decode))
        while len(_PROBED) > _PROBED_KEEP:
            _PROBED.popitem(last=False)


@contextlib.contextmanager
def open_video(path: str | os.PathLike[str], field: str = "video") -> Iterator[tuple[Any, Any, VideoInfo]]:
    """The open PyAV container, its first video stream and what :func:`probe_video` reports
    (no frame decoded yet), refusing what it refuses; closed when the block ends."""
    import av

    p = Path(path)
    size = _check_file(p, field)
    try:
        container = _open(p, VIDEO_FORMATS)
    except av.FFmpegError as exc:
        raise _refuse(p, field, "video", exc) from None
    try:
        demuxer = container.format.name
        vstreams = container.streams.video
        if not vstreams:
            raise ValidationError.single(field, "not a readable video file (no video stream)")
        vs = vstreams[0]
        cc = vs.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width <= 0 or height <= 0:
            raise ValidationError.single(field, "not a readable video file (no picture size)")
        if width * height > MAX_PIXELS:
            raise ValidationError.single(field, f"{width}x{height} px is larger than 8K; refused before decoding")
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(Fraction(rate)) if rate else 0.0
        duration = _duration(container, vs)
        astreams = container.streams.audio
        audio_codec = astreams[0].codec_context.name if astreams else None
        name = CONTAINER_NAMES.get(demuxer, demuxer)
        if demuxer == MOV_DEMUXER:
            brand = str(container.metadata.get("major_brand", "")).strip()
            name = "mov" if brand == "qt" else "mp4"
        info = VideoInfo(
            path=str(p.resolve()),
            container=name,
            demuxer="mov" if demuxer == MOV_DEMUXER else demuxer.split(",")[0],
            duration=duration,
            width=width,
            height=height,
            fps=round(fps, 3),
            video_codec=str(cc.name),
            has_audio=bool(astreams),
            audio_codec=str(audio_codec) if audio_codec else None,
            size_bytes=size,
        )
        yield container, vs, info
    finally:
        container.close()


def _duration(container: Any, stream: Any) -> float:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def _decode_one_frame(container: Any, stream: Any, field: str, kind: str = "video") -> None:
    """A header can lie; one decoded frame shows the stream is actually readable."""
    import av

    try:
        for _frame in container.decode(stream):
            return
    except av.FFmpegError:
        pass
    raise no_decodable_frame(field, kind)


def no_decodable_frame(field: str, kind: str = "video") -> ValidationError:
    return ValidationError.single(field, f"not a readable {kind} file (no decodable frame)")


def probe_image(path: str | os.PathLike[str], field: str = "image") -> ImageInfo:
    """Format and size of a local PNG/JPEG image, refusing anything else."""
    import av

    p = Path(path)
    size = _check_file(p, field)
    # Probing scores image2 (by file name) above the pipe demuxers, so the demuxer is chosen
    # from the signature and forced, exactly as the ffmpeg run will force it (-f).
    demuxer = _image_demuxer(p)
    if demuxer is None:
        raise _refuse(p, field, "image", None)
    try:
        container = _open(p, IMAGE_FORMATS, format=demuxer)
    except av.FFmpegError as exc:
        raise _refuse(p, field, "image", exc) from None
    try:
        vstreams = container.streams.video
        if not vstreams:
            raise ValidationError.single(field, "not a readable image file")
        cc = vstreams[0].codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width <= 0 or height <= 0:
            raise ValidationError.single(field, "not a readable image file (no picture size)")
        if width * height > MAX_PIXELS:
            raise ValidationError.single(field, f"{width}x{height} px is larger than 8K; refused before decoding")
        _decode_one_frame(container, vstreams[0], field, "image")
        return ImageInfo(
            path=str(p.resolve()),
            format=CONTAINER_NAMES.get(demuxer, demuxer),
            demuxer=demuxer,
            width=width,
            height=height,
            size_bytes=size,
        )
    finally:
        container.close()
