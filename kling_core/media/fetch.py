"""Download a media URL to a local file, refusing private addresses and oversized bodies.

Redirects are followed by hand (at most ``MAX_REDIRECTS``), each hop re-resolved and
re-checked; the connection goes to the address that was checked, with the original host in
the ``Host`` header and TLS SNI. The body streams to a temporary file in the destination
folder that is renamed only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from kling_core.errors import UnsafeMediaError, ValidationError
from kling_core.media.netguard import checked_address
from kling_core.media.runner import temp_name
from kling_core.settings import MediaSettings

MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0
_CHUNK = 1 << 16


def _pinned(url: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, plus the Host header and SNI that keep it honest."""
    parts = urlsplit(url)
    host_literal = f"[{addr}]" if addr.version == 6 else str(addr)
    netloc = f"{host_literal}:{port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    hostname = parts.hostname or ""
    default_port = 443 if parts.scheme.lower() == "https" else 80
    host_header = hostname if port == default_port else f"{hostname}:{port}"
    if ":" in hostname and not hostname.startswith("["):
        host_header = f"[{hostname}]" if port == default_port else f"[{hostname}]:{port}"
    extensions: dict[str, Any] = {}
    if parts.scheme.lower() == "https":
        extensions["sni_hostname"] = hostname
    return pinned, {"host": host_header}, extensions


def url_file_name(url: str, suffix: str = "") -> str:
    """A stable local name for a URL (the same URL is downloaded to the same name)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    tail = Path(urlsplit(url).path).suffix.lower()
    if not tail or len(tail) > 6 or not tail[1:].isalnum():
        tail = suffix
    return f"{digest}{tail}"


async def download(
    url: str,
    dest_dir: Path,
    *,
    field: str,
    settings: MediaSettings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Path:
    """Fetch ``url`` into ``dest_dir``; return the local path. Raises UnsafeMediaError / ValidationError."""
    settings = settings or MediaSettings()
    dest = dest_dir / url_file_name(url)
    timeout = httpx.Timeout(settings.download_timeout, connect=CONNECT_TIMEOUT)
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=timeout, transport=transport, trust_env=False
    ) as client:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            addr, port = checked_address(current, field=field, allow_private=settings.allow_private_urls)
            pinned, headers, extensions = _pinned(current, addr, port)
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise ValidationError.single(field, f"could not download {_safe(current)}: {type(exc).__name__}") from None
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise ValidationError.single(field, f"redirect without a Location from {_safe(current)}")
                    current = urljoin(current, location)
                    continue
                if response.status_code != 200:
                    raise ValidationError.single(
                        field, f"could not download {_safe(current)}: HTTP {response.status_code}"
                    )
                dest_dir.mkdir(parents=True, exist_ok=True)
                await _save(response, dest, field=field, limit=settings.max_download_bytes)
                return dest
            finally:
                await response.aclose()
    raise UnsafeMediaError(f"more than {MAX_REDIRECTS} redirects from {_safe(url)}", field=field)


async def _save(response: httpx.Response, dest: Path, *, field: str, limit: int) -> None:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise UnsafeMediaError(f"download is {int(declared)} bytes, over the {limit}-byte limit", field=field)
    tmp = temp_name(dest)
    done = False
    try:
        written = 0
        with tmp.open("wb") as fh:
            async for chunk in response.aiter_bytes(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise UnsafeMediaError(f"download exceeds the {limit}-byte limit", field=field)
                fh.write(chunk)
        if declared and declared.isdigit() and written != int(declared):
            raise ValidationError.single(field, f"download truncated: {written} of {declared} bytes")
        os.replace(tmp, dest)
        done = True
    finally:
        if not done:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _safe(url: str) -> str:
    """The URL without its query string (which may carry a signed token)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
