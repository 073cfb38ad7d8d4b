"""Kling official API provider plugin (provider name ``kling``): ``/v1/videos/omni-video``."""

from kling_core import hookimpl
from kling_core_plugins.kling.provider import KlingProvider
from kling_core_plugins.kling.wire import parse_callback

__all__ = ["KlingProvider", "kling_register_providers", "parse_callback"]


@hookimpl
def kling_register_providers(register: object) -> None:
    register(KlingProvider)  # type: ignore[operator]
