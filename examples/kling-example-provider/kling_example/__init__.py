"""kling provider plugin for the Example Video API (a made-up host, documented in README.md)."""

from __future__ import annotations

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_example.provider import ExampleProvider

__all__ = ["ExampleProvider"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(ExampleProvider)
