"""Local media → public URLs, for hosts that fetch media by URL only.

The core client lets a request with local files through to such a provider only when a
plugin answers the ``kling_media_uploader`` hook; the client puts that uploader in the
provider's context, and ``Provider.prepare()`` calls :func:`upload_local_media` to swap
each local path for the URL the uploader returns.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kling_core.contract.checks import URLS_ONLY, local_path
from kling_core.contract.models import EditRequest
from kling_core.errors import Problem, UnsafeMediaError, UnsupportedError, ValidationError

if TYPE_CHECKING:
    from kling_core.provider import MediaUploader


# The media a host is sent are probed first, and only PNG and JPEG pass as images.
_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".png": "image/png", ".jpg": "image/jpeg",
          ".jpeg": "image/jpeg"}
READ_CHUNK = 1024 * 1024


def content_type(path: Path) -> str:
    """The MIME type an upload declares (our media types first: platforms' tables differ)."""
    return _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class FileChunks:
    """A re-iterable async byte stream over a file region, so a retried upload can resend it."""

    def __init__(self, path: Path, start: int = 0, length: int | None = None) -> None:
        self.path = path
        self.start = start
        self.length = path.stat().st_size - start if length is None else length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        left = self.length
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            while left > 0:
                chunk = fh.read(min(READ_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk


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


def probe_local_media(request: EditRequest) -> None:
    """Probe each local file a host will be sent: one that is not a video (or an image) of an
    accepted format is refused naming its field, before anything is uploaded or claimed,
    instead of becoming a job the host fails later. All problems are raised together. (The
    client calls it before ``prepare`` for hosts that take URLs only; the mock probes its own.)"""
    local = [(field, path) for field, ref in request.media() if (path := local_path(ref)) is not None]
    if not local:
        return
    from kling_core.media.probe import probe_image, probe_video

    problems: list[Problem] = []
    for field, path in local:
        try:
            if field == "video":
                probe_video(path, field, decode=False)
            else:
                probe_image(path, field)
        except UnsafeMediaError:
            raise
        except ValidationError as exc:
            problems += exc.problems
    if problems:
        raise ValidationError(problems)


async def replace_local_media(request: EditRequest, upload: Callable[[Path], Awaitable[str]]) -> EditRequest:
    """``request`` with each local file uploaded once by ``upload`` and replaced by its URL."""
    urls: dict[str, str] = {}
    for _path, ref in request.media():
        p = local_path(ref)
        if p is not None and ref not in urls:
            urls[ref] = str(await upload(Path(p)))
    return request.map_media(lambda ref: urls.get(ref, ref)) if urls else request
