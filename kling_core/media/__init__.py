"""Local media handling: locating ffmpeg, probing, hardened ffmpeg runs, safe URL fetches.

Internal: plugins import these through :mod:`kling_core.sdk`, users through :mod:`kling_core`.

Everything here treats media as untrusted input: files are opened with a container
whitelist and the ``file`` protocol only, ffmpeg gets argv lists with per-input whitelists and
a wall-clock timeout, and URL fetches refuse private addresses unless explicitly allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kling_core.lazy import exporter

if TYPE_CHECKING:
    from kling_core.media.fetch import download
    from kling_core.media.locate import find_ffmpeg
    from kling_core.media.probe import ImageInfo, VideoInfo, probe_image, probe_video
    from kling_core.media.resolve import local_media
    from kling_core.media.runner import FfmpegInput, run_ffmpeg
    from kling_core.media.samples import SampleMedia, make_sample

# Names load on first use: a submodule (media.workdir, media.probe) must not pull in the URL
# fetcher, and with it httpx, for commands that never fetch a URL.
_MODULE_OF = {
    "download": "kling_core.media.fetch",
    "find_ffmpeg": "kling_core.media.locate",
    "ImageInfo": "kling_core.media.probe",
    "VideoInfo": "kling_core.media.probe",
    "probe_image": "kling_core.media.probe",
    "probe_video": "kling_core.media.probe",
    "local_media": "kling_core.media.resolve",
    "FfmpegInput": "kling_core.media.runner",
    "run_ffmpeg": "kling_core.media.runner",
    "SampleMedia": "kling_core.media.samples",
    "make_sample": "kling_core.media.samples",
}

__all__ = [
    "FfmpegInput",
    "ImageInfo",
    "SampleMedia",
    "VideoInfo",
    "download",
    "find_ffmpeg",
    "local_media",
    "make_sample",
    "probe_image",
    "probe_video",
    "run_ffmpeg",
]


_load = exporter(__name__, _MODULE_OF)


def __getattr__(name: str) -> Any:
    return _load(name)
