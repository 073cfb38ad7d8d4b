"""kling provider plugin for the Example Video API (a made-up host, documented in README.md)."""

from __future__ import annotations

from typing import Any

from kling_core import hookimpl
from kling_example.provider import ExampleProvider

__all__ = ["ExampleProvider"]


@hookimpl
def kling_register_providers(register: Any) -> None:
    register(ExampleProvider)
