"""The ``mock`` provider: a deterministic, offline stand-in for the hosted O1/O3 edit models.

It renders a real clip with ffmpeg (see ``docs/mock.md`` for what each request field does to
the picture), behaves like a hosted job (queued → running → succeeded, resumable by id from
another process, cancellable) and can be told to fail in each of the ways hosts fail.
"""

from __future__ import annotations

from collections.abc import Callable

from kling_core.sdk import hookimpl
from kling_core_plugins.mock.provider import MockProvider

__all__ = ["MockProvider"]


@hookimpl
def kling_register_providers(register: Callable[..., None]) -> None:
    register(MockProvider)
