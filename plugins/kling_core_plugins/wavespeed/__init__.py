"""WaveSpeedAI provider plugin: Kling O1/O3 video edits through ``api.wavespeed.ai/api/v3``."""

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.wavespeed.provider import WaveSpeedProvider

__all__ = ["WaveSpeedProvider", "kling_register_providers"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(WaveSpeedProvider)
