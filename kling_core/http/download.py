"""Result downloads: streamed to disk, verified, retried as GETs, never with a credential.

The download client is separate from every provider's API client and holds no key; each
redirect hop is re-checked (scheme, private addresses) before it is followed. A failed or
truncated download is retried as a GET (never by resubmitting the job); 404/410 means the host
no longer holds the result.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import uuid
from pathlib import Path

import httpx

from kling_core.contract.checks import local_path
from kling_core.contract.models import EditResult
from kling_core.errors import ProviderError, ResultExpiredError, UnsafeMediaError
from kling_core.http.redact import redact_url
from kling_core.http.retry import backoff_delays, classify
from kling_core.media.netguard import address_problem
from kling_core.provider import ProviderContext
from kling_core.settings import MediaSettings, PollSettings

MAX_ATTEMPTS = 5
MAX_REDIRECTS = 5
CHUNK = 1024 * 1024
RETRY_BACKOFF = PollSettings(initial=1.0, factor=2.0, max=16.0, jitter=0.25)
DNS_TIMEOUT = 5.0


class _Transient(Exception):
    """One attempt failed in a way another GET may fix."""


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address_problem(ip) is not None


async def check_fetch_url(url: httpx.URL, media: MediaSettings, *, resolve: bool) -> None:
    """Refuse URLs we must not fetch: non-http(s), and private/loopback/link-local hosts.

    ``resolve``: also resolve the name and refuse it if any address is private. Without a
    network (tests with an injected transport) only literal addresses are checked.
    """
    field = "result.video.url"
    if url.scheme not in ("https", "http"):
        raise UnsafeMediaError(f"scheme {url.scheme!r} is not allowed for downloads", field=field)
    if media.allow_private_urls:
        return
    if url.scheme != "https":
        raise UnsafeMediaError("plain http downloads are refused (https only)", field=field)
    host = url.host
    if not host or host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        raise UnsafeMediaError(f"host {host!r} is a local address", field=field)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        if _blocked_ip(literal):
            raise UnsafeMediaError(f"host {host} is not a public address", field=field)
        return
    if not resolve:
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), DNS_TIMEOUT)
    except (TimeoutError, OSError):
        return  # unresolvable: the connection attempt itself will fail
    for info in infos:
        address = info[4][0]
        try:
            if _blocked_ip(ipaddress.ip_address(str(address).split("%")[0])):
                raise UnsafeMediaError(f"host {host} resolves to a non-public address", field=field)
        except ValueError:
            continue


async def download(
    url: str,
    dest: Path,
    expected_size: int | None = None,
    *,
    ctx: ProviderContext | None = None,
    provider: str = "download",
    job_id: str | None = None,
) -> Path:
    """Save ``url`` to ``dest`` atomically; return ``dest``.

    Streams in chunks (never the whole file in memory) to a temporary name beside ``dest``,
    checks the byte count against Content-Length and ``expected_size``, enforces
    ``ctx.media.max_download_bytes``, then renames. ``file://`` URLs (results a provider
    already wrote locally) are copied the same way.
    """
    ctx = ctx or ProviderContext(name=provider)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = local_path(url) if url.lower().startswith("file://") or "://" not in url else None
    if source is not None:
        return _copy_local(source, dest, expected_size, ctx.media, provider=provider, job_id=job_id)
    delays = backoff_delays(RETRY_BACKOFF)
    last = ""
    timeout = httpx.Timeout(ctx.media.download_timeout, connect=min(10.0, ctx.media.download_timeout))
    async with httpx.AsyncClient(transport=ctx.transport, follow_redirects=False, timeout=timeout) as client:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await _attempt(client, httpx.URL(url), dest, expected_size, ctx, provider=provider, job_id=job_id)
                return dest
            except _Transient as exc:
                last = str(exc)
                if attempt < MAX_ATTEMPTS:
                    await ctx.sleep(next(delays))
    raise ProviderError(
        f"downloading the result failed after {MAX_ATTEMPTS} attempts: {last}",
        provider=provider, code="download_failed", retryable=True, job_id=job_id,
    )


async def download_result(result: EditResult, dest: Path, ctx: ProviderContext) -> Path:
    """Download a finished job's video to ``dest`` (the core client's entry point)."""
    return await download(
        result.video.url, dest, result.video.file_size, ctx=ctx, provider=result.provider, job_id=result.job_id
    )


async def _attempt(
    client: httpx.AsyncClient,
    url: httpx.URL,
    dest: Path,
    expected_size: int | None,
    ctx: ProviderContext,
    *,
    provider: str,
    job_id: str | None,
) -> None:
    media = ctx.media
    for _hop in range(MAX_REDIRECTS + 1):
        await check_fetch_url(url, media, resolve=ctx.transport is None)
        try:
            async with client.stream("GET", url) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise ProviderError("redirect without a Location header", provider=provider, job_id=job_id)
                    url = url.join(location)
                    continue
                status = response.status_code
                if status in (404, 410):
                    raise ResultExpiredError(
                        "the host no longer holds the result video (it expired or was deleted); "
                        "the job was not resubmitted",
                        provider=provider, status_code=status, job_id=job_id,
                    )
                if status >= 400:
                    if classify("download", status, response.headers).retry:
                        raise _Transient(f"HTTP {status} from {redact_url(url)}")
                    raise ProviderError(
                        f"downloading the result failed: HTTP {status}", provider=provider,
                        status_code=status, job_id=job_id,
                    )
                await _write_body(response, dest, expected_size, media.max_download_bytes, url)
                return
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__} while fetching {redact_url(url)}") from exc
    raise ProviderError(f"more than {MAX_REDIRECTS} redirects", provider=provider, job_id=job_id)


class StreamTooLarge(Exception):
    """The body passed the byte cap; nothing was kept."""


class StreamIncomplete(Exception):
    """The body ended short of (or past) the size it was announced with; nothing was kept."""


async def write_stream(response: httpx.Response, dest: Path, *, cap: int, expected_size: int | None = None) -> int:
    """Stream a response body to ``dest`` through a temporary file, never whole in memory.

    The file appears at ``dest`` only when complete: under ``cap`` bytes, matching the
    Content-Length and ``expected_size`` where given. Returns the byte count.
    """
    declared = response.headers.get("content-length")
    length = int(declared) if declared and declared.isdigit() else None
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    count = 0
    try:
        with tmp.open("wb") as fh:
            async for chunk in response.aiter_bytes(CHUNK):
                count += len(chunk)
                if count > cap:
                    raise StreamTooLarge(f"more than {cap} bytes: over the download limit")
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if length is not None and count != length:
            raise StreamIncomplete(f"truncated: {count} of {length} bytes")
        if expected_size is not None and count != expected_size:
            raise StreamIncomplete(f"size mismatch: {count} bytes, the host reported {expected_size}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return count


async def _write_body(
    response: httpx.Response, dest: Path, expected_size: int | None, cap: int, url: httpx.URL
) -> None:
    declared = response.headers.get("content-length")
    length = int(declared) if declared and declared.isdigit() else None
    if length is not None and length > cap:
        raise UnsafeMediaError(f"{length} bytes exceeds the download limit of {cap}", field="result.video")
    try:
        await write_stream(response, dest, cap=cap, expected_size=expected_size)
    except StreamTooLarge as exc:
        raise UnsafeMediaError(str(exc), field="result.video") from None
    except StreamIncomplete as exc:
        raise _Transient(f"{exc} from {redact_url(url)}") from None


def _copy_local(
    source: Path, dest: Path, expected_size: int | None, media: MediaSettings, *, provider: str, job_id: str | None
) -> Path:
    if not source.is_file():
        raise ResultExpiredError(f"the result file {source} is gone", provider=provider, job_id=job_id)
    size = source.stat().st_size
    if size > media.max_download_bytes:
        raise UnsafeMediaError(f"{size} bytes exceeds the download limit", field="result.video")
    if expected_size is not None and size != expected_size:
        raise ProviderError(
            f"the result file has {size} bytes, expected {expected_size}", provider=provider, job_id=job_id
        )
    if source.resolve() == dest.resolve():
        return dest
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
