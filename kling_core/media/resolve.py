"""Turn a request's media reference (path, file:// URL, http(s) URL) into a local file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kling_core.contract.checks import is_url, local_path
from kling_core.errors import ValidationError
from kling_core.settings import MediaSettings

if TYPE_CHECKING:
    import httpx


async def local_media(
    ref: str,
    *,
    field: str,
    settings: MediaSettings,
    download_dir: Path,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Path:
    """The absolute local path for ``ref``, downloading http(s) URLs under the SSRF guard."""
    if is_url(ref):
        from kling_core.media.fetch import download  # httpx only for a URL, never for a local file

        return await download(ref, download_dir, field=field, settings=settings, transport=transport)
    path = local_path(ref)
    assert path is not None
    if not path.exists():
        raise ValidationError.single(field, f"file not found: {path}")
    if not path.is_file():
        raise ValidationError.single(field, f"not a regular file: {path}")
    return path.resolve()
