"""Is a result a playable video? Checked on the downloaded file before it takes the output's name.

A host that reports no size can send a truncated or close-delimited body that looks complete
to the HTTP layer. The probe catches what the byte count cannot:

- the container is on the video whitelist (:mod:`kling_core.media.formats`) and has a video
  stream whose first frame decodes (:func:`kling_core.media.probe.probe_video`);
- every packet the index announces is present (an MP4 whose ``moov`` comes first still probes
  fine when the end of ``mdat`` is missing: its frame count gives it away), and the packets
  cover the declared duration;
- where the output should follow the input, its duration is the input's within
  ``max(0.5 s, 5 %)``.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from kling_core.errors import MediaError, UnsafeMediaError, ValidationError
from kling_core.media.probe import VideoInfo, no_decodable_frame, open_video

FIELD = "result.video"
MIN_TOLERANCE = 0.5  # seconds
RELATIVE_TOLERANCE = 0.05
SPAN_SLACK = 0.05  # seconds of the declared video length its packets may fall short of
_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


class UnplayableVideoError(MediaError):
    """A result that is not a playable video (or not the expected length); a new GET may fix it."""

    def __init__(self, job: str, reason: str) -> None:
        super().__init__(f"{job}: the result is not a playable video: {reason}")
        self.job = job
        self.reason = reason


def duration_tolerance(expected: float) -> float:
    """How far an output's duration may be from the input's: ``max(0.5 s, 5 %)``."""
    return max(MIN_TOLERANCE, RELATIVE_TOLERANCE * expected)


def verify_video(path: Path, *, expect_duration: float | None, job: str) -> None:
    """Raise :class:`UnplayableVideoError` (a MediaError naming ``job``) unless ``path`` plays.

    ``job`` names the job in the message (e.g. ``"fal job 1234"``); ``expect_duration`` is
    the input's duration in seconds when the output should follow it, else None. The file is
    opened once: the probe, the first frame's decode and the packet scan share it.
    """
    try:
        with open_video(path, FIELD) as (container, stream, info):
            seconds = _played_seconds(container, stream, info, job)
    except ValidationError as exc:
        raise UnplayableVideoError(job, exc.problems[0].message if exc.problems else str(exc)) from None
    except UnsafeMediaError as exc:  # off the whitelist, or a playlist in disguise
        raise UnplayableVideoError(job, exc.reason) from None
    if expect_duration is not None and expect_duration > 0:
        tolerance = duration_tolerance(expect_duration)
        if abs(seconds - expect_duration) > tolerance:
            raise UnplayableVideoError(
                job, f"it lasts {seconds:.2f} s, the input {expect_duration:.2f} s (allowed: ±{tolerance:.2f} s)"
            )


def _played_seconds(container: Any, stream: Any, info: VideoInfo, job: str) -> float:
    """Demux every video packet, decoding the first frame: the seconds they cover; truncation raises."""
    announced = int(stream.frames or 0)  # the index's frame count (0: not known)
    count, first, end = _scan(container, stream, job)
    declared = _stream_seconds(stream)
    if count == 0:
        raise UnplayableVideoError(job, "no video packets (the body is cut off)")
    if announced and count < announced:
        raise UnplayableVideoError(job, f"cut off: {count} of {announced} video frames present")
    span = max(0.0, end - first)
    if declared is not None and not announced:
        # No frame count to compare (Matroska/WebM): the packets must cover the video stream's
        # own declared length to within a frame and a half.
        slack = max(SPAN_SLACK, 1.5 * info.frame_duration)
    else:
        # The frame count said it all, or only the container's length is known (the longest
        # stream, audio included): a loose bound.
        declared = declared or info.duration
        slack = duration_tolerance(declared)
    if declared and span < declared - slack:
        raise UnplayableVideoError(job, f"cut off: video for {span:.2f} s of the declared {declared:.2f} s")
    return span if span > 0 else info.duration


def _scan(container: Any, stream: Any, job: str) -> tuple[int, float, float]:
    """Count the video packets and the span they cover; the first ones are decoded until a
    frame comes out (a header can lie: one decoded frame shows the stream is readable)."""
    import av

    count, first, end = 0, float("inf"), 0.0
    base = stream.time_base
    decoder = stream.codec_context
    decoded = failed = False
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            if packet.is_corrupt:
                raise UnplayableVideoError(job, f"corrupt video packet {count + 1} (the body is damaged or cut off)")
            count += 1
            if packet.pts is not None and base is not None:
                start = float(packet.pts * base)
                first = min(first, start)
                end = max(end, float((packet.pts + (packet.duration or 0)) * base))
            if not (decoded or failed):
                try:
                    decoded = bool(decoder.decode(packet))
                except av.FFmpegError:
                    failed = True
    except av.FFmpegError as exc:
        if not (decoded or failed):
            raise UnplayableVideoError(job, no_decodable_frame(FIELD).problems[0].message) from None
        raise UnplayableVideoError(job, f"unreadable after {count} video packets ({exc})") from None
    if not (decoded or failed):
        with contextlib.suppress(av.FFmpegError):
            decoded = bool(decoder.decode(None))  # a decoder holding frames back gives them up
    if not decoded:
        raise UnplayableVideoError(job, no_decodable_frame(FIELD).problems[0].message)
    return count, (first if count and first != float("inf") else 0.0), end


def _stream_seconds(stream: Any) -> float | None:
    """The video stream's declared length: its header, or the DURATION tag Matroska writers add."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    tag = next((str(v) for k, v in stream.metadata.items() if str(k).upper() == "DURATION"), "")
    match = _CLOCK.match(tag.strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return value if value > 0 else None
