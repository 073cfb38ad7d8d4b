"""Result downloads: the guarded fetch of :mod:`kling_core.media.fetch` with a job's identity.

The download client is separate from every provider's API client and holds no key. A failed
or truncated download is retried as a GET (never by resubmitting the job); 404/410 means the
host no longer holds the result. Plain http is refused unless ``media.allow_private_urls``
(test servers).
"""

from __future__ import annotations

from pathlib import Path

from kling_core.contract.checks import local_path
from kling_core.contract.models import EditResult
from kling_core.errors import ProviderError, ResultExpiredError, UnsafeMediaError
from kling_core.files import StreamIncomplete, StreamTooLarge, copy_atomic
from kling_core.media.fetch import MAX_ATTEMPTS, MAX_REDIRECTS, fetch, write_stream
from kling_core.media.netguard import Resolver
from kling_core.provider import ProviderContext

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_REDIRECTS",
    "StreamIncomplete",
    "StreamTooLarge",
    "download",
    "download_result",
    "write_stream",
]

FIELD = "result.video.url"


async def download(
    url: str,
    dest: Path,
    expected_size: int | None = None,
    *,
    ctx: ProviderContext | None = None,
    provider: str = "download",
    job_id: str | None = None,
    resolve: Resolver | None = None,
) -> Path:
    """Save ``url`` to ``dest`` atomically; return ``dest``.

    ``ctx.media`` carries the private-address switch and the size cap, ``ctx.transport`` and
    ``ctx.sleep`` the test doubles; ``resolve`` replaces DNS (tests with fake host names).
    ``file://`` URLs (results a provider already wrote locally) are copied the same way.
    """
    ctx = ctx or ProviderContext(name=provider)
    dest = Path(dest)
    source = local_path(url) if url.lower().startswith("file://") or "://" not in url else None
    if source is not None:
        return await _copy_local(source, dest, expected_size, ctx, provider=provider, job_id=job_id)
    return await fetch(
        url, dest, settings=ctx.media, field=FIELD, expected_size=expected_size,
        require_https=not ctx.media.allow_private_urls, transport=ctx.transport, resolve=resolve,
        sleep=ctx.sleep, provider=provider, job_id=job_id,
    )


async def download_result(
    result: EditResult, dest: Path, ctx: ProviderContext, *, resolve: Resolver | None = None
) -> Path:
    """Download a finished job's video to ``dest`` (the core client's entry point)."""
    return await download(
        result.video.url, dest, result.video.file_size, ctx=ctx, provider=result.provider,
        job_id=result.job_id, resolve=resolve,
    )


async def _copy_local(
    source: Path, dest: Path, expected_size: int | None, ctx: ProviderContext, *, provider: str, job_id: str | None
) -> Path:
    if not source.is_file():
        raise ResultExpiredError(f"the result file {source} is gone", provider=provider, job_id=job_id)
    size = source.stat().st_size
    if size > ctx.media.max_download_bytes:
        raise UnsafeMediaError(f"{size} bytes exceeds the download limit", field="result.video")
    if expected_size is not None and size != expected_size:
        raise ProviderError(
            f"the result file has {size} bytes, expected {expected_size}", provider=provider, job_id=job_id
        )
    if source.resolve() == dest.resolve():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    await copy_atomic(source, dest)
    return dest
