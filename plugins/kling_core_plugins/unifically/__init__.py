"""Unifically provider plugin: Kling O1 video edits through ``api.unifically.com/v1/tasks``."""

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.unifically.provider import UnificallyProvider

__all__ = ["UnificallyProvider", "kling_register_providers"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(UnificallyProvider)
