"""Helpers for the mock provider tests: build providers and run jobs to the end."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kling_core_plugins.mock import MockProvider

from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import JobStatus, is_terminal
from kling_core.media import SampleMedia
from kling_core.provider import JobHandle, ProviderContext
from kling_core.settings import MediaSettings, ProviderSettings


def provider(work_dir: Path, options: Mapping[str, Any] | None = None, **media: Any) -> MockProvider:
    ctx = ProviderContext(
        name="mock",
        settings=ProviderSettings(options=dict(options or {})),
        media=MediaSettings(**media),
        work_dir=work_dir,
    )
    return MockProvider(ctx)


def request(sample: SampleMedia, prompt: str = "Turn @Image1 into a poster, keep @Element1", **kw: Any) -> EditRequest:
    doc: dict[str, Any] = {
        "prompt": prompt,
        "video": str(sample.video),
        "images": [str(sample.images[0])],
        "elements": [Element(frontal_image=str(sample.images[1]), reference_images=(str(sample.images[1]),))],
        "keep_audio": True,
        "quality": "std",
    }
    doc.update(kw)
    return EditRequest(**doc)


async def follow(p: MockProvider, handle: JobHandle, *, every: float = 0.03, limit: float = 120) -> list[JobStatus]:
    """Poll until terminal; every status seen, in order."""
    seen: list[JobStatus] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while loop.time() < end:
        status = await p.status(handle)
        seen.append(status)
        if is_terminal(status):
            return seen
        await asyncio.sleep(every)
    raise AssertionError(f"job {handle.job_id} did not finish: last {seen[-1] if seen else None}")


def run_job(p: MockProvider, req: EditRequest) -> tuple[JobHandle, list[JobStatus]]:
    async def go() -> tuple[JobHandle, list[JobStatus]]:
        prepared = await p.prepare(req)
        handle = await p.submit(prepared)
        return handle, await follow(p, handle)

    return asyncio.run(go())


def states(seen: list[JobStatus]) -> list[str]:
    out: list[str] = []
    for s in seen:
        if not out or out[-1] != s.state:
            out.append(s.state)
    return out
