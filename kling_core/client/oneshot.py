"""One edit, start to finish, without managing a client: ``aedit`` and its blocking ``edit``."""

from __future__ import annotations

from typing import Unpack, cast

from kling_core.client.aio import JOB_OPTIONS, AsyncEditClient, JobOptions
from kling_core.client.base import EDIT_FIELDS, EditFields, PathArg, unexpected_keywords
from kling_core.client.sync import blocking
from kling_core.config import KlingConfig
from kling_core.contract.models import EditResult


class OneEdit(EditFields, JobOptions, total=False):
    """The keywords of ``aedit``/``edit``: the request's fields, how to run it, and the config."""

    config: KlingConfig | None


ONE_EDIT = OneEdit.__optional_keys__


async def aedit(video: PathArg, prompt: str, **fields: Unpack[OneEdit]) -> EditResult:
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
    unexpected_keywords("aedit", fields, ONE_EDIT)
    request_fields = cast(EditFields, {k: v for k, v in fields.items() if k in EDIT_FIELDS})
    job_options = cast(JobOptions, {k: v for k, v in fields.items() if k in JOB_OPTIONS})
    async with AsyncEditClient(provider=fields.get("provider"), config=fields.get("config")) as client:
        request = client.request(video, prompt, **request_fields)
        return await client.edit(request, **job_options)


edit = blocking(
    aedit, name="edit", doc='Blocking ``aedit``: ``kling_core.edit("in.mp4", "make it @Image1", images=["a.png"])``.'
)
