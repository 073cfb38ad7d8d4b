"""Hold the mock provider's renders until a test says go, so "a poll returned while it renders"
or "the deadline passed while it renders" does not depend on how fast ffmpeg is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


def gate_renders(provider: Any, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make ``provider``'s (the mock's) renders wait for the returned event before they run."""
    gate = asyncio.Event()
    real_render = provider._render

    async def gated_render(record: Any) -> Any:
        await gate.wait()
        return await real_render(record)

    monkeypatch.setattr(provider, "_render", gated_render)
    return gate
