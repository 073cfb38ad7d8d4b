"""Resolve and probe a request's media, and check it against the capability data.

A request a host would refuse, the mock refuses too, with the same error type and a reason
naming the field (e.g. ``video: 2.0 s long, at least 3 s``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import attrs

from kling_core.sdk import (
    EditRequest,
    Element,
    ImageInfo,
    ImageLimits,
    MediaSettings,
    ModelCapabilities,
    Problem,
    ValidationError,
    VideoInfo,
    VideoLimits,
    local_media,
    probe_image,
    probe_video,
)

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


@attrs.frozen
class Inspected:
    request: EditRequest  # every media reference replaced by an absolute local path
    video: VideoInfo
    images: tuple[ImageInfo, ...]
    frontals: tuple[ImageInfo, ...]


def video_problems(info: VideoInfo, limits: VideoLimits, field: str = "video") -> list[Problem]:
    out: list[Problem] = []
    if info.container not in limits.containers:
        out.append(Problem(field, f"{info.container} container, accepted: {', '.join(limits.containers)}"))
    if info.duration < limits.min_duration:
        out.append(Problem(field, f"{info.duration:.1f} s long, at least {limits.min_duration:g} s"))
    elif info.duration > limits.max_duration:
        out.append(Problem(field, f"{info.duration:.1f} s long, at most {limits.max_duration:g} s"))
    for side, value in (("width", info.width), ("height", info.height)):
        if not limits.min_side <= value <= limits.max_side:
            out.append(Problem(field, f"{side} {value} px, must be {limits.min_side}–{limits.max_side} px"))
    if info.fps < limits.min_fps:
        out.append(Problem(field, f"{info.fps:g} fps, at least {limits.min_fps:g}"))
    elif info.fps > limits.max_fps:
        out.append(Problem(field, f"{info.fps:g} fps, at most {limits.max_fps:g}"))
    if info.size_bytes > limits.max_bytes:
        out.append(Problem(field, f"{info.size_bytes / 1e6:.1f} MB, at most {limits.max_bytes / 1e6:g} MB"))
    return out


def image_problems(info: ImageInfo, limits: ImageLimits, field: str) -> list[Problem]:
    out: list[Problem] = []
    if info.format not in limits.formats:
        out.append(Problem(field, f"{info.format} image, accepted: {', '.join(limits.formats)}"))
    if info.size_bytes > limits.max_bytes:
        out.append(Problem(field, f"{info.size_bytes / 1e6:.1f} MB, at most {limits.max_bytes / 1e6:g} MB"))
    if min(info.width, info.height) < limits.min_side:
        out.append(Problem(field, f"{info.width}x{info.height} px, each side at least {limits.min_side} px"))
    aspect = info.width / info.height
    if not limits.min_aspect <= aspect <= limits.max_aspect:
        out.append(Problem(field, f"aspect ratio {aspect:.2f}, must be {limits.min_aspect:g}–{limits.max_aspect:g}"))
    return out


def _probe(probe: Callable[[], T], problems: list[Problem]) -> T | None:
    """``probe()``, or None with its problems noted when the file cannot be read as media."""
    try:
        return probe()
    except ValidationError as exc:
        problems.extend(exc.problems)
        return None


async def inspect(
    request: EditRequest,
    model: ModelCapabilities,
    *,
    media: MediaSettings,
    download_dir: Path,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Inspected:
    """Localize and probe every media reference; raise one error listing every problem."""

    async def local(ref: str, field: str) -> str:
        path = await local_media(ref, field=field, settings=media, download_dir=download_dir, transport=transport)
        return str(path)

    # Unsafe media raise at once (UnsafeMediaError must keep its type); an unreadable file is
    # one more problem, reported with the others found in the request.
    problems: list[Problem] = []
    video_path = await local(request.video, "video")
    video = _probe(lambda: probe_video(video_path, "video"), problems)
    if video is not None:
        problems.extend(video_problems(video, model.video))

    async def image(ref: str, field: str) -> tuple[str, ImageInfo | None]:
        path = await local(ref, field)
        info = _probe(lambda: probe_image(path, field), problems)
        if info is not None:
            problems.extend(image_problems(info, model.image, field))
        return path, info

    images: list[ImageInfo] = []
    image_paths: list[str] = []
    for i, ref in enumerate(request.images):
        path, info = await image(ref, f"images[{i}]")
        image_paths.append(path)
        if info is not None:
            images.append(info)
    frontals: list[ImageInfo] = []
    elements: list[Element] = []
    for i, el in enumerate(request.elements):
        front_path, front = await image(el.frontal_image, f"elements[{i}].frontal_image")
        if front is not None:
            frontals.append(front)
        refs = [(await image(r, f"elements[{i}].reference_images[{j}]"))[0] for j, r in enumerate(el.reference_images)]
        elements.append(attrs.evolve(el, frontal_image=front_path, reference_images=tuple(refs)))
    if problems or video is None:  # every unreadable file left a problem
        raise ValidationError(problems)
    localized = attrs.evolve(request, video=video_path, images=tuple(image_paths), elements=tuple(elements))
    return Inspected(localized, video, tuple(images), tuple(frontals))
