"""Unifically provider plugin: Kling O1 video edits through ``api.unifically.com/v1/tasks``."""

from kling_core import hookimpl
from kling_core_plugins.unifically.provider import UnificallyProvider
from kling_core_plugins.unifically.wire import parse_callback

__all__ = ["UnificallyProvider", "kling_register_providers", "parse_callback"]


@hookimpl
def kling_register_providers(register: object) -> None:
    register(UnificallyProvider)  # type: ignore[operator]
