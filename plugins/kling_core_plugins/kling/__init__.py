"""Kling official API provider plugin (provider name ``kling``): ``/v1/videos/omni-video``."""

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.kling.provider import KlingProvider

__all__ = ["KlingProvider", "kling_register_providers"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(KlingProvider)
