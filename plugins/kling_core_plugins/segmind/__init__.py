"""Segmind provider plugin: the Kling O1/O3 video-to-video edit through Segmind's API."""

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.segmind.provider import SegmindProvider

__all__ = ["SegmindProvider"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(SegmindProvider)
