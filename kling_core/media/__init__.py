"""Local media handling: locating ffmpeg, probing, hardened ffmpeg runs, safe URL fetches.

Internal: plugins import these through :mod:`kling_core.sdk`, users through :mod:`kling_core`.

Everything here treats media as untrusted input: files are opened with a container
whitelist and the ``file`` protocol only, ffmpeg gets argv lists with per-input whitelists and
a wall-clock timeout, and URL fetches refuse private addresses unless explicitly allowed.
"""

from kling_core.media.fetch import download
from kling_core.media.locate import find_ffmpeg
from kling_core.media.probe import ImageInfo, VideoInfo, probe_image, probe_video
from kling_core.media.resolve import local_media
from kling_core.media.runner import FfmpegInput, run_ffmpeg
from kling_core.media.samples import SampleMedia, make_sample

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
