"""fal's webhook signing keys: a JWKS fetched through the guarded fetch, cached, refreshed.

Keys are cached for ``max_age`` (fal says they may change: at most 24 h) and fetched again
early when a signature verifies with none of them (a rotated key), but never more often than
every ``min_refresh`` seconds: a stream of forged signatures cannot turn the receiver into a
JWKS fetcher; nor is a failed fetch tried again sooner (a 503 meanwhile). The fetch is
:func:`kling_core.media.fetch.fetch`: https only and public addresses only unless
``media.allow_private_urls`` (a test host), a small size cap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import httpx

from kling_core.errors import KlingError
from kling_core.media.netguard import Resolver
from kling_core.settings import MediaSettings
from kling_core.webhooks.errors import WebhookRefused

MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT = 20.0  # seconds for the whole fetch, retries included

Fetcher = Callable[[str], Awaitable[bytes]]


def guarded_fetcher(media: MediaSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                    resolve: Resolver | None = None) -> Fetcher:
    """GET a key set through the project's one guarded fetch (see the module docstring)."""
    from kling_core.media.fetch import fetch

    settings = attrs.evolve(media, max_download_bytes=MAX_JWKS_BYTES)

    async def get(url: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="kling-jwks-") as tmp:
            dest = Path(tmp) / "jwks.json"
            await fetch(url, dest, settings=settings, field="webhooks.fal_jwks_url",
                        require_https=not media.allow_private_urls, transport=transport, resolve=resolve,
                        provider="webhooks")
            return dest.read_bytes()

    return get


def parse_jwks(data: bytes) -> tuple[bytes, ...]:
    """The raw Ed25519 public keys of a JWKS document (other key types are skipped)."""
    try:
        doc: Any = json.loads(data)
    except ValueError:
        raise ValueError("the key set is not JSON") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the key set has no keys list")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        x = entry.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            keys.append(raw)
    if not keys:
        raise ValueError("the key set holds no Ed25519 key")
    return tuple(keys)


class JwksCache:
    """The keys of one JWKS URL: ``await keys()``; ``await refresh()`` after a miss."""

    def __init__(self, url: str, fetch: Fetcher, *, clock: Callable[[], float], max_age: float,
                 min_refresh: float) -> None:
        self.url = url
        self._fetch = fetch
        self._clock = clock
        self.max_age = max_age
        self.min_refresh = min_refresh
        self._keys: tuple[bytes, ...] = ()
        self._fetched_at: float | None = None
        # The last failed fetch: none is tried again before min_refresh has passed, so callbacks
        # (forged ones included) arriving while the key set cannot be read do not each fetch it.
        self._failed: tuple[float, str] | None = None
        self._lock = asyncio.Lock()

    async def keys(self) -> tuple[bytes, ...]:
        async with self._lock:
            if self._fetched_at is None or self._clock() - self._fetched_at >= self.max_age:
                await self._load()
            return self._keys

    async def refresh(self) -> tuple[bytes, ...] | None:
        """Fetch again unless the last fetch was under ``min_refresh`` ago (then None)."""
        async with self._lock:
            if self._fetched_at is not None and self._clock() - self._fetched_at < self.min_refresh:
                return None
            await self._load()
            return self._keys

    async def _load(self) -> None:
        if self._failed is not None and self._clock() - self._failed[0] < self.min_refresh:
            raise WebhookRefused(503, self._failed[1])  # not fetched again yet: see __init__
        try:
            data = await asyncio.wait_for(self._fetch(self.url), FETCH_TIMEOUT)
            keys = parse_jwks(data)
        except (KlingError, ValueError, TimeoutError) as exc:
            # A 503: the sender retries later. Keys past their age are not used meanwhile.
            reason = exc.message if isinstance(exc, KlingError) else str(exc) or "timed out"
            message = f"cannot read the signing keys at {self.url}: {reason}"
            self._failed = (self._clock(), message)
            raise WebhookRefused(503, message) from None
        self._keys = keys
        self._fetched_at = self._clock()
        self._failed = None
