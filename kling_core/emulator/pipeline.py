"""A job's inputs: fetched (only from allowed places), probed, and checked against the limits.

The checks are the documented O1/O3 source limits (the same capability data the mock uses);
each problem carries a machine type in fal's vocabulary (``video_duration_too_long``,
``file_download_error``, ...) and the canonical field path, and each host words it in its
own error shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from kling_core.contract.capabilities import ImageLimits, VideoLimits
from kling_core.contract.models import EditRequest, Element
from kling_core.emulator.media import DownloadRefused, MediaResolver
from kling_core.errors import KlingError
from kling_core.media.probe import ImageInfo, VideoInfo, probe_image, probe_video


@attrs.frozen
class InputProblem:
    field: str  # canonical path: video, images[0], elements[1].frontal_image, ...
    type: str
    message: str
    ctx: Mapping[str, Any] | None = None


class InputProblems(Exception):
    def __init__(self, problems: list[InputProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


@attrs.frozen
class Prepared:
    request: EditRequest  # media replaced by local paths
    video: VideoInfo
    images: tuple[ImageInfo, ...]
    frontals: tuple[ImageInfo, ...]
    files: tuple[Path, ...]  # every input in order


def media_refs(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(canonical field, reference) for every input of an intake document, video first."""
    out = [("video", doc["video"])]
    out += [(f"images[{i}]", ref) for i, ref in enumerate(doc.get("images", ()))]
    for i, el in enumerate(doc.get("elements", ())):
        out.append((f"elements[{i}].frontal_image", el["frontal_image"]))
        out += [(f"elements[{i}].reference_images[{j}]", r) for j, r in enumerate(el["reference_images"])]
    return out


def check_refs(doc: Mapping[str, Any], resolver: MediaResolver) -> None:
    """Refuse references the emulator may not fetch, without fetching (the sample render)."""
    problems = []
    for field, ref in media_refs(doc):
        try:
            resolver.check(ref)
        except DownloadRefused as exc:
            problems.append(_download_problem(field, exc))
    if problems:
        raise InputProblems(problems)


def _download_problem(field: str, exc: DownloadRefused) -> InputProblem:
    if exc.too_large:
        return InputProblem(field, "file_too_large", f"File is too large: {exc.reason}")
    return InputProblem(field, "file_download_error",
                        f"Failed to download the file. Please check if the URL is accessible. ({exc.reason})")


def video_problems(info: VideoInfo, limits: VideoLimits, field: str = "video") -> list[InputProblem]:
    out = []
    if info.container not in limits.containers:
        out.append(InputProblem(field, "unsupported_video_format",
                                f"Unsupported video format {info.container}; accepted: {', '.join(limits.containers)}",
                                {"supported_formats": list(limits.containers)}))
    if info.duration < limits.min_duration:
        out.append(InputProblem(field, "video_duration_too_short",
                                f"Video duration {info.duration:.2f}s is below the minimum of {limits.min_duration:g}s",
                                {"min_duration": limits.min_duration}))
    elif info.duration > limits.max_duration:
        out.append(InputProblem(field, "video_duration_too_long",
                                f"Video duration {info.duration:.2f}s exceeds the maximum of {limits.max_duration:g}s",
                                {"max_duration": limits.max_duration}))
    if min(info.width, info.height) < limits.min_side:
        out.append(InputProblem(field, "video_resolution_too_low",
                                f"Video is {info.width}x{info.height}; each side must be at least {limits.min_side}px",
                                {"min_width": limits.min_side, "min_height": limits.min_side}))
    elif max(info.width, info.height) > limits.max_side:
        out.append(InputProblem(field, "video_resolution_too_high",
                                f"Video is {info.width}x{info.height}; each side must be at most {limits.max_side}px",
                                {"max_width": limits.max_side, "max_height": limits.max_side}))
    if not limits.min_fps <= info.fps <= limits.max_fps:
        out.append(InputProblem(field, "video_fps_out_of_range",
                                f"Video frame rate {info.fps:g} fps is outside {limits.min_fps:g}-{limits.max_fps:g} fps",
                                {"min_fps": limits.min_fps, "max_fps": limits.max_fps}))
    return out


def image_problems(info: ImageInfo, limits: ImageLimits, field: str) -> list[InputProblem]:
    out = []
    if info.format not in limits.formats:
        out.append(InputProblem(field, "unsupported_image_format", f"Unsupported image format {info.format}",
                                {"supported_formats": list(limits.formats)}))
    if min(info.width, info.height) < limits.min_side:
        out.append(InputProblem(field, "image_too_small",
                                f"Image is {info.width}x{info.height}; each side must be at least {limits.min_side}px",
                                {"min_width": limits.min_side, "min_height": limits.min_side}))
    aspect = info.width / info.height
    if not limits.min_aspect <= aspect <= limits.max_aspect:
        out.append(InputProblem(field, "image_aspect_ratio_out_of_range",
                                f"Image aspect ratio {aspect:.2f} is outside {limits.min_aspect:g}-{limits.max_aspect:g}",
                                {"min_aspect_ratio": limits.min_aspect, "max_aspect_ratio": limits.max_aspect}))
    return out


async def prepare(doc: Mapping[str, Any], resolver: MediaResolver, *, video_limits: VideoLimits,
                  image_limits: ImageLimits, job_id: str) -> Prepared:
    """Fetch, probe and check every input; raise InputProblems listing all that is wrong."""
    problems: list[InputProblem] = []
    paths: dict[str, Path] = {}
    for n, (field, ref) in enumerate(media_refs(doc)):
        cap = video_limits.max_bytes if field == "video" else image_limits.max_bytes
        try:
            paths[field] = await resolver.fetch(ref, cap=cap, name=f"{job_id}-{n}")
        except DownloadRefused as exc:
            problems.append(_download_problem(field, exc))
    if problems:
        raise InputProblems(problems)

    def probe_all() -> tuple[VideoInfo | None, dict[str, ImageInfo]]:
        video: VideoInfo | None = None
        try:
            video = probe_video(paths["video"], "video")
        except KlingError as exc:
            problems.append(InputProblem("video", "unsupported_video_format", f"Not a readable video: {exc}"))
        else:
            problems.extend(video_problems(video, video_limits))
        images: dict[str, ImageInfo] = {}
        for field, path in paths.items():
            if field == "video":
                continue
            try:
                images[field] = probe_image(path, field)
            except KlingError as exc:
                problems.append(InputProblem(field, "image_load_error", f"Not a readable image: {exc}"))
            else:
                problems.extend(image_problems(images[field], image_limits, field))
        return video, images

    video, images = await asyncio.to_thread(probe_all)
    if problems or video is None:
        raise InputProblems(problems)
    elements = tuple(
        Element(frontal_image=str(paths[f"elements[{i}].frontal_image"]),
                reference_images=tuple(str(paths[f"elements[{i}].reference_images[{j}]"])
                                       for j in range(len(el["reference_images"]))))
        for i, el in enumerate(doc.get("elements", ()))
    )
    request = EditRequest(
        prompt=doc["prompt"], video=str(paths["video"]), model=doc["model"], quality=doc["quality"],
        edit_mode=doc["edit_mode"], keep_audio=doc["keep_audio"],
        images=tuple(str(paths[f"images[{i}]"]) for i in range(len(doc.get("images", ())))),
        elements=elements,
    )
    n_images = len(doc.get("images", ()))
    return Prepared(
        request=request, video=video,
        images=tuple(images[f"images[{i}]"] for i in range(n_images)),
        frontals=tuple(images[f"elements[{i}].frontal_image"] for i in range(len(elements))),
        files=tuple(paths.values()),
    )
