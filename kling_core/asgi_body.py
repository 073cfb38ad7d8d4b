"""A request body read with a size cap: the emulator's hosts and the webhook receiver both take
bodies from anyone who can reach them, so none is read past its cap, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body declared or streamed more than its cap."""


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


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, at most ``cap`` bytes (BodyTooLarge past it)."""
    return b"".join([chunk async for chunk in limited_body(request, cap)])
