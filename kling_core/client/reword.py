"""Giving a raised error the message that says what happened here and what to do next."""

from __future__ import annotations

from typing import TypeVar

from kling_core.errors import KlingError

E = TypeVar("E", bound=KlingError)


def reword(exc: E, message: str) -> E:
    """``exc`` with ``message`` in place of its own (``str(exc)`` and ``exc.args`` too)."""
    exc.message = message
    exc.args = (message,)
    return exc
