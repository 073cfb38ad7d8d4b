"""One edit, start to finish, without managing a client: ``aedit`` and its blocking ``edit``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kling_core.client.aio import AsyncEditClient
from kling_core.client.base import PathArg, StatusCallback, SubmitCallback
from kling_core.client.sync import blocking
from kling_core.config import KlingConfig
from kling_core.contract.models import AspectRatio, EditMode, EditResult, Element, ModelName, Quality


async def aedit(
    video: PathArg,
    prompt: str,
    *,
    images: Iterable[PathArg] = (),
    elements: Iterable[Element | Mapping[str, Any]] = (),
    model: ModelName | None = None,
    quality: Quality | None = None,
    keep_audio: bool | None = None,
    edit_mode: EditMode | None = None,
    aspect_ratio: AspectRatio | None = None,
    duration: int | None = None,
    webhook_url: str | None = None,
    client_key: str | None = None,
    options: Mapping[str, Any] | None = None,
    output: PathArg | None = None,
    provider: str | None = None,
    config: KlingConfig | None = None,
    on_submit: SubmitCallback | None = None,
    on_status: StatusCallback | None = None,
    new: bool = False,
    timeout: float | None = None,
) -> EditResult:
    """One edit, start to finish: ``await kling_core.aedit("in.mp4", "…", output="out.mp4")``.

    ``video``, ``images`` and ``output`` take a str or any path-like (``pathlib.Path``); URLs as
    str. ``model``, ``quality``, ``edit_mode`` and ``aspect_ratio`` are the closed sets of
    :class:`~kling_core.EditRequest` (``None`` leaves the config's default). ``on_submit(handle)``
    is called once the job is bound to a host job (just submitted, or picked up from the job
    log), before waiting; ``on_status(status)`` on each status polled. ``timeout`` (seconds)
    bounds the wait: :class:`~kling_core.JobTimeoutError` names the job, which keeps running.

    Running the same edit again picks up its job while the result is not saved yet, and
    makes a new take once it was; ``new=True`` always makes a new job.
    """
    async with AsyncEditClient(provider=provider, config=config) as client:
        request = client.request(
            video, prompt, images=images, elements=elements, model=model, quality=quality, keep_audio=keep_audio,
            edit_mode=edit_mode, aspect_ratio=aspect_ratio, duration=duration, webhook_url=webhook_url,
            client_key=client_key, options=options, provider=provider,
        )
        return await client.edit(request, output=output, on_submit=on_submit, on_status=on_status, new=new,
                                 timeout=timeout)


edit = blocking(
    aedit, name="edit", doc='Blocking ``aedit``: ``kling_core.edit("in.mp4", "make it @Image1", images=["a.png"])``.'
)
