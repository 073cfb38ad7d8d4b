"""What an emulated host provides, and the request helpers every host shares.

A host is mounted at ``/<name>`` and gets every request under it (one catch-all route), so
that unknown paths, wrong methods, bad bodies and its own errors all come back in *its* wire
shape. A host module supplies: the ASGI app, the hints that tell each client how to reach it,
and a finish hook (webhooks/callbacks) registered with the engine.

To add a host (segmind, unifically, kling): subclass :class:`Host`, register it in
``kling_core.emulator.hosts.HOSTS``, and see the TODO list in docs/emulator.md.
"""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp

from kling_core.emulator.engine import Engine
from kling_core.emulator.settings import EmulatorSettings, HostSettings
from kling_core.emulator.webhooks import Ed25519Signer


class BodyTooLarge(Exception):
    pass


class BadJson(Exception):
    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@attrs.frozen
class HostContext:
    engine: Engine
    settings: EmulatorSettings
    host: HostSettings
    signer: Ed25519Signer
    secret: bytes  # for tokens and signed upload URLs this emulator issues
    log: Callable[[str], None]
    ca_file: Path | None = None  # the CA clients trust when the emulator serves https


class Host(abc.ABC):
    name: ClassVar[str]

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine

    @abc.abstractmethod
    def asgi(self) -> ASGIApp:
        """The app mounted at ``/<name>``."""

    @abc.abstractmethod
    def hints(self, base_url: str) -> dict[str, Any]:
        """How each client reaches this host at ``base_url`` (``/<name>`` on the emulator)."""

    @abc.abstractmethod
    def hint_line(self, base_url: str) -> str:
        """One line for the console: the base URL and how to point each client at it."""

    @staticmethod
    def note(request: Request, text: str) -> None:
        """Something for this request's log line (never a secret)."""
        request.scope.setdefault("state", {})["log_note"] = text


async def limited_body(request: Request, cap: int) -> AsyncIterator[bytes]:
    """The request body in chunks; BodyTooLarge once it passes ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        if chunk:
            yield chunk


async def read_json(request: Request, cap: int) -> Any:
    """The parsed JSON body; BodyTooLarge, BadJson (ClientDisconnect passes through)."""
    data = b"".join([chunk async for chunk in limited_body(request, cap)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson("the body is not UTF-8", exc.start) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadJson(exc.msg, exc.pos) from None
    except RecursionError:
        raise BadJson("nested too deeply") from None


__all__ = ["BadJson", "BodyTooLarge", "ClientDisconnect", "Host", "HostContext", "limited_body", "read_json"]
