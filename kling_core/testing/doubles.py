"""Test doubles for building a provider the way the core does: canary keys, refusing transport.

Nothing is patched: the doubles go in through ``ProviderContext`` like the real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
from attrs import field

from kling_core.provider import Provider, ProviderContext
from kling_core.settings import MediaSettings, ProviderSettings

# How an unexpected request is answered: a non-retryable client error, so a plugin fails fast.
UNEXPECTED_STATUS = 418


def canary_credentials(provider_cls: type[Provider]) -> dict[str, str]:
    """A fresh, recognisable fake value for every credential the provider needs."""
    return {spec.env: f"sk-CANARY-{uuid.uuid4().hex}" for spec in provider_cls.credentials}


@attrs.define
class CallLog:
    """Every HTTP request a provider made, in order (the zero-HTTP-call checks read it)."""

    requests: list[httpx.Request] = field(factory=list)

    def __len__(self) -> int:
        return len(self.requests)


def refusing_transport(log: CallLog) -> httpx.MockTransport:
    """A transport that logs and refuses every request (for "no network call" checks)."""

    def handler(request: httpx.Request) -> httpx.Response:
        log.requests.append(request)
        return httpx.Response(UNEXPECTED_STATUS, json={"error": "no request was expected here"})

    return httpx.MockTransport(handler)


async def no_sleep(seconds: float) -> None:
    """A ``ctx.sleep`` that returns at once (retries and polls cost no time)."""
    return None


def build_provider(
    provider_cls: type[Provider],
    *,
    environ: Mapping[str, str],
    transport: Any = None,
    options: Mapping[str, Any] | None = None,
    base_url: str | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    clock: Callable[[], float] | None = None,
    work_dir: Path | None = None,
    media: MediaSettings | None = None,
) -> Provider:
    """A provider instance the way the core builds one, with test doubles injected."""
    settings = ProviderSettings(options=dict(options or {}), base_url=base_url)
    kw: dict[str, Any] = {}
    if sleep is not None:
        kw["sleep"] = sleep
    if clock is not None:
        kw["clock"] = clock
    ctx = ProviderContext(
        name=provider_cls.name,
        settings=settings,
        media=media or MediaSettings(),
        environ=dict(environ),
        transport=transport,
        work_dir=work_dir,
        **kw,
    )
    return provider_cls(ctx)
