"""Replicate provider plugin: Kling O1 and Kling 3.0 Omni edits through Replicate's predictions API."""

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.replicate.provider import ReplicateProvider

__all__ = ["ReplicateProvider", "kling_register_providers"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(ReplicateProvider)
