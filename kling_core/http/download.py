"""Result downloads: the guarded fetch of :mod:`kling_core.media.fetch` with a job's identity.

The download client is separate from every provider's API client and holds no key. A failed
or truncated download is retried as a GET (never by resubmitting the job); 404/410 means the
host no longer holds the result. Plain http is refused unless ``media.allow_private_urls``
(test servers).

A result URL must be http(s). The only local files copied are ones this process's providers
wrote themselves, inside the provider's own work dir: the mock's renders and Segmind v1's
saved answer bodies. A host naming any other local path or ``file://`` URL is a
ProtocolError naming the job (``file:///proc/self/environ`` must never become an output).

The downloaded file is verified (:func:`kling_core.verify.verify_video`) before it takes the
output's name; an unplayable body is fetched again, at most ``VERIFY_ATTEMPTS`` times. It is
written to a locked ``.NAME.<hex>.part`` beside the output (:func:`kling_core.outputs.staging_file`);
what a killed earlier save of the same output left there is removed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from kling_core.contract.models import EditResult
from kling_core.errors import (
    ProtocolError,
    ProviderError,
    RateLimitedError,
    ResultExpiredError,
    UnsafeMediaError,
)
from kling_core.files import CHUNK, StreamIncomplete, StreamTooLarge, copy_atomic
from kling_core.job_commands import resume_command
from kling_core.media.netguard import Resolver
from kling_core.media.workdir import work_dir
from kling_core.outputs import remove_leftovers, staging_file
from kling_core.provider import ProviderContext
from kling_core.verify import UnplayableVideoError, verify_video

if TYPE_CHECKING:
    from kling_core.media.fetch import MAX_ATTEMPTS, MAX_REDIRECTS, write_stream

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_REDIRECTS",
    "VERIFY_ATTEMPTS",
    "StreamIncomplete",
    "StreamTooLarge",
    "download",
    "download_result",
    "refetch_command",
    "write_stream",
]

FIELD = "result.video.url"
UNPLAYABLE = "unplayable_result"  # ProviderError.code when every fetched body failed the probe
LOCAL_RESULT = "local_result_url"  # ProtocolError.code for a local path or file:// from a host
# Whole GETs of a result whose body arrives complete by the byte count but does not play.
# Each one is itself the guarded fetch with its own MAX_ATTEMPTS for transport failures.
VERIFY_ATTEMPTS = 3
VERIFY_BACKOFF = (2.0, 4.0)  # seconds before the 2nd and 3rd GET


def refetch_command(provider: str, job_id: str, client_key: str | None = None) -> str:
    """The command that fetches a finished job's result again."""
    if client_key:
        return resume_command(client_key)
    return f"kling result {shlex.quote(provider)} {shlex.quote(job_id)} -o OUT.mp4"


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
    """Save ``url`` to ``dest`` atomically (unverified); return ``dest``.

    ``ctx.media`` carries the private-address switch and the size cap, ``ctx.transport`` and
    ``ctx.sleep`` the test doubles; ``resolve`` replaces DNS (tests with fake host names).
    A local path or ``file://`` URL is copied only from the provider's own work dir (see the
    module doc), any other is a ProtocolError; other schemes are the guarded fetch's to refuse.
    """
    ctx = ctx or ProviderContext(name=provider)
    dest = Path(dest)
    source = _local_source(url, ctx, provider=provider, job_id=job_id)
    if source is not None:
        _check_local(source, expected_size, ctx, provider=provider, job_id=job_id)
        if source != dest.resolve():
            dest.parent.mkdir(parents=True, exist_ok=True)
            await copy_atomic(source, dest)
        return dest
    return await _fetch(url, dest, expected_size, ctx, provider=provider, job_id=job_id, resolve=resolve)


async def download_result(
    result: EditResult,
    dest: Path,
    ctx: ProviderContext,
    *,
    expect_duration: float | None = None,
    client_key: str | None = None,
    resolve: Resolver | None = None,
) -> Path:
    """Download a finished job's video to ``dest``, verified before it takes that name.

    The body goes to a temporary file beside ``dest``; it is probed (an allowed container, a
    video stream, every frame present, and a duration within ``max(0.5 s, 5 %)`` of
    ``expect_duration`` when given: the input's, where the output should follow it), then
    renamed over ``dest``. An unplayable body is fetched again as a GET, ``VERIFY_ATTEMPTS``
    in all, then a ProtocolError (code ``unplayable_result``) names the job and the command
    that fetches it again (``kling jobs resume KEY`` with ``client_key``, else ``kling result
    PROVIDER JOB_ID -o OUT.mp4``); a download that fails outright says the same. Nothing
    half-written stays behind. Returns ``dest``.
    """
    dest = Path(dest)
    provider, job_id = result.provider, result.job_id
    job = f"{provider} job {job_id}"
    again = refetch_command(provider, job_id, client_key)
    url = result.video.url
    expected_size = result.video.file_size

    async def check(path: Path) -> None:
        await asyncio.to_thread(verify_video, path, expect_duration=expect_duration, job=job)

    source = _local_source(url, ctx, provider=provider, job_id=job_id)
    if source is not None:
        _check_local(source, expected_size, ctx, provider=provider, job_id=job_id)
    created = _make_folders(dest.parent)
    try:
        remove_leftovers(dest)  # what a killed earlier save of this output left
        if source is not None:
            await _save_local(source, dest, check, provider=provider, job_id=job_id)
        else:
            await _save_fetched(url, dest, expected_size, ctx, check, again=again, provider=provider,
                                job_id=job_id, resolve=resolve)
    except BaseException:
        _remove_empty(created)
        raise
    return dest


Check = Callable[[Path], Awaitable[None]]


async def _save_local(source: Path, dest: Path, check: Check, *, provider: str, job_id: str) -> None:
    try:
        if source == dest.resolve():
            await check(dest)
            return
        with staging_file(dest) as staging:
            await _copy_into(source, staging)
            await check(staging)
            _commit(staging, dest)
    except UnplayableVideoError as exc:  # copying again would not help
        raise ProtocolError(f"the result is not a playable video ({exc.reason}); its file is {source}",
                            provider=provider, job_id=job_id, code=UNPLAYABLE) from None


async def _save_fetched(
    url: str, dest: Path, expected_size: int | None, ctx: ProviderContext, check: Check, *, again: str,
    provider: str, job_id: str, resolve: Resolver | None,
) -> None:
    last: UnplayableVideoError | None = None
    for attempt in range(1, VERIFY_ATTEMPTS + 1):
        try:
            with staging_file(dest) as staging:
                await _fetch(url, staging, expected_size, ctx, provider=provider, job_id=job_id, resolve=resolve,
                             in_place=True)
                await check(staging)
                _commit(staging, dest)
                return
        except UnplayableVideoError as exc:
            last = exc
        except (ResultExpiredError, ProtocolError):
            raise
        except RateLimitedError as exc:  # the host named a longer wait than we take: keep it for the caller
            raise RateLimitedError(
                f"{exc.reason}; fetch it again with `{again}`", retry_after=exc.retry_after, provider=provider,
                status_code=exc.status_code, code=exc.code, job_id=job_id,
            ) from None
        except ProviderError as exc:
            raise ProviderError(
                f"{exc.reason}; fetch it again with `{again}`", provider=provider, status_code=exc.status_code,
                code=exc.code, retryable=exc.retryable, job_id=job_id,
            ) from None
        if attempt < VERIFY_ATTEMPTS:
            await ctx.sleep(VERIFY_BACKOFF[min(attempt, len(VERIFY_BACKOFF)) - 1])
    assert last is not None
    raise ProtocolError(
        f"the downloaded result is not a playable video after {VERIFY_ATTEMPTS} GETs ({last.reason}); "
        f"nothing was saved; fetch it again with `{again}`",
        provider=provider, job_id=job_id, code=UNPLAYABLE,
    )


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    missing = []
    current = folder
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


async def _fetch(
    url: str, dest: Path, expected_size: int | None, ctx: ProviderContext, *, provider: str, job_id: str | None,
    resolve: Resolver | None, in_place: bool = False,
) -> Path:
    from kling_core.media.fetch import fetch  # httpx: only for a remote result

    return await fetch(
        url, dest, settings=ctx.media, field=FIELD, expected_size=expected_size,
        require_https=not ctx.media.allow_private_urls, transport=ctx.transport, resolve=resolve,
        sleep=ctx.sleep, provider=provider, job_id=job_id, in_place=in_place,
    )


async def _copy_into(source: Path, staging: Path) -> None:
    """Copy ``source`` into the held staging file (the same inode), chunk by chunk, fsynced."""

    def copy() -> None:
        with source.open("rb") as src, open(staging, "r+b") as out:
            out.truncate(0)
            while chunk := src.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())

    await asyncio.to_thread(copy)


def own_dirs(ctx: ProviderContext) -> tuple[Path, ...]:
    """The folders a provider built from ``ctx`` writes its results to (links resolved).

    The same :func:`~kling_core.media.workdir.work_dir` the providers use: the mock with the
    context's environment, HttpProvider (Segmind v1 answer bodies) with the process's.
    """
    roots = {work_dir(ctx.work_dir, ctx.media, ctx.name, ctx.environ), work_dir(ctx.work_dir, ctx.media, ctx.name)}
    return tuple(sorted({root.expanduser().resolve() for root in roots}))


def _local_source(url: str, ctx: ProviderContext, *, provider: str, job_id: str | None) -> Path | None:
    """The resolved local file a result names, if the provider wrote it; None for a URL to fetch.

    Other schemes (ftp://, data:) go to the guarded fetch, which refuses them.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            from kling_core.media.fetch import safe_url

            raise ProtocolError(f"the result URL names a file on another machine ({safe_url(url)})",
                                provider=provider, job_id=job_id, code=LOCAL_RESULT)
        path = Path(unquote(parts.path))
    elif not scheme:
        path = Path(url)
    else:
        return None
    resolved = path.resolve()  # links followed: a link in the work dir to /etc/passwd is outside it
    # The mock renders into its work dir, and Segmind's v1 API answers the submit with the video
    # itself, which HttpProvider._submit_saving_body streams into the provider's work dir and
    # names by a file:// URL. Those files were written by us: a local result is copied only
    # when it lies inside the provider's own work dir. A host that names any other file
    # (file:///proc/self/environ, /etc/passwd, ../../etc/passwd) gets a ProtocolError.
    if not any(resolved.is_relative_to(root) for root in own_dirs(ctx)):
        raise ProtocolError(
            f"the result names a local file ({path}), not an http(s) URL; refused: only files the provider "
            "wrote into its own work dir are copied from disk",
            provider=provider, job_id=job_id, code=LOCAL_RESULT,
        )
    return resolved


def _check_local(
    source: Path, expected_size: int | None, ctx: ProviderContext, *, provider: str, job_id: str | None
) -> None:
    if not source.is_file():
        raise ResultExpiredError(f"the result file {source} is gone", provider=provider, job_id=job_id)
    size = source.stat().st_size
    if size > ctx.media.max_download_bytes:
        raise UnsafeMediaError(f"{size} bytes exceeds the download limit", field="result.video")
    if expected_size is not None and size != expected_size:
        raise ProviderError(
            f"the result file has {size} bytes, expected {expected_size}", provider=provider, job_id=job_id
        )


def _commit(staging: Path, dest: Path) -> None:
    """Rename the verified file over ``dest`` and make the rename durable."""
    os.replace(staging, dest)
    with contextlib.suppress(OSError):
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def __getattr__(name: str) -> Any:
    """The guarded fetch's names, re-exported without importing it (and httpx) for a local copy."""
    if name in ("MAX_ATTEMPTS", "MAX_REDIRECTS", "write_stream"):
        from kling_core.media import fetch

        return getattr(fetch, name)
    raise AttributeError(f"module 'kling_core.http.download' has no attribute {name!r}")
