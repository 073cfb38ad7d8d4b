"""One edit, start to finish, without managing a client: ``aedit`` and its blocking ``edit``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kling_core.client.aio import AsyncEditClient
from kling_core.client.base import StatusCallback
from kling_core.client.sync import blocking
from kling_core.config import KlingConfig
from kling_core.contract.models import EditResult


async def aedit(
    video: str,
    prompt: str,
    *,
    output: str | Path | None = None,
    provider: str | None = None,
    config: KlingConfig | None = None,
    on_status: StatusCallback | None = None,
    new: bool = False,
    timeout: float | None = None,
    **fields: Any,
) -> EditResult:
    """One edit, start to finish: ``await kling_core.aedit("in.mp4", "…", output="out.mp4")``.

    Running the same edit again picks up its job while the result is not saved yet, and
    makes a new take once it was; ``new=True`` always makes a new job.
    """
    async with AsyncEditClient(provider=provider, config=config) as client:
        request = client.request(video, prompt, provider=provider, **fields)
        return await client.edit(request, output=output, on_status=on_status, new=new, timeout=timeout)


edit = blocking(
    aedit, name="edit", doc='Blocking ``aedit``: ``kling_core.edit("in.mp4", "make it @Image1", images=["a.png"])``.'
)
