"""A streamed response body that frees its request's slot when it is closed.

It subclasses httpx's stream, so it lives apart from :mod:`kling_core.inflight`'s bounds: a
client following a local job (the mock) imports those without importing httpx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx


class ReleasingStream(httpx.AsyncByteStream):
    """A streamed response body that calls ``release`` once, when it is closed: a slot (or a
    busy count) held by a request lasts as long as its connection is in use."""

    def __init__(self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            if isinstance(self._stream, httpx.AsyncByteStream):
                await self._stream.aclose()
        finally:
            if release is not None:
                release()
