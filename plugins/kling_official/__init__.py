"""Kling official API provider plugin (provider name ``kling``): ``/v1/videos/omni-video``."""

from kling_core import hookimpl
from kling_official.provider import KlingProvider

__all__ = ["KlingProvider", "kling_register_providers"]


@hookimpl
def kling_register_providers(register: object) -> None:
    register(KlingProvider)  # type: ignore[operator]
