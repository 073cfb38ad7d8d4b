"""Local media → public URLs, for hosts that fetch media by URL only.

The core client lets a request with local files through to such a provider only when a
plugin answers the ``kling_media_uploader`` hook; the client puts that uploader in the
provider's context, and ``Provider.prepare()`` calls :func:`upload_local_media` to swap
each local path for the URL the uploader returns.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kling_core.contract.checks import URLS_ONLY, local_path
from kling_core.contract.models import EditRequest
from kling_core.errors import Problem, UnsupportedError

if TYPE_CHECKING:
    from kling_core.provider import MediaUploader


def content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    if path.suffix.lower() == ".mov":
        return "video/quicktime"
    return guessed or "application/octet-stream"


async def upload_local_media(request: EditRequest, provider: str, uploader: MediaUploader | None = None) -> EditRequest:
    """``request`` with every local file replaced by its uploaded URL (each file sent once).

    Raises :class:`UnsupportedError` naming each local field when no uploader is available.
    """
    local = [(path, ref) for path, ref in request.media() if local_path(ref) is not None]
    if not local:
        return request
    if uploader is None:
        raise UnsupportedError(provider, [Problem(path, URLS_ONLY) for path, _ in local])
    return await replace_local_media(request, lambda p: uploader.upload(p, content_type(p)))


async def replace_local_media(request: EditRequest, upload: Callable[[Path], Awaitable[str]]) -> EditRequest:
    """``request`` with each local file uploaded once by ``upload`` and replaced by its URL."""
    urls: dict[str, str] = {}
    for _path, ref in request.media():
        p = local_path(ref)
        if p is not None and ref not in urls:
            urls[ref] = str(await upload(Path(p)))
    return request.map_media(lambda ref: urls.get(ref, ref)) if urls else request
