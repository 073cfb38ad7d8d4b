"""fal.ai provider plugin: the Kling O1/O3 video-to-video edit through fal's queue API."""

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.fal.provider import FalProvider

__all__ = ["FalProvider"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(FalProvider)
