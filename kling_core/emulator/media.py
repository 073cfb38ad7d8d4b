"""Where the emulator may take input media from, and fetching it: never from outside.

Allowed sources, in order:

1. the emulator's own storage (a URL naming one of its stored files, on any loopback origin:
   read from disk, no HTTP);
2. ``data:`` URIs (inline, decoded);
3. files under the configured ``media_root`` (a ``file://`` URL or a path);
4. http(s) URLs whose host is a loopback address (127.0.0.0/8, ::1) or ``localhost``, fetched
   without following redirects, under a byte cap and a timeout.

Anything else (another host name, a private or public address, a file outside the root) is
refused with :class:`DownloadRefused` without any lookup or connection: the host turns it into
its own "could not download" error. No DNS lookup is made for a name that is not localhost.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from kling_core.emulator.storage import Storage, safe_name
from kling_core.files import atomic_open
from kling_core.loopback import is_loopback_host as is_loopback_bind

_DATA = re.compile(r"^data:([\w.+/-]*)(;[\w=.+-]+)*?(;base64)?,", re.I)
_FILE_PATH = re.compile(r"/files/([A-Za-z0-9_-]{6,64})/([A-Za-z0-9._-]+)$")


class DownloadRefused(Exception):
    """An input the emulator could not (or may not) fetch; ``reason`` says why."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def is_loopback_host(host: str | None) -> bool:
    """A URL's host on this machine: the bind check's loopback names and addresses, and also the
    other names that resolve only to loopback (``localhost.localdomain``, ``*.localhost``)."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    return host == "localhost.localdomain" or host.endswith(".localhost") or is_loopback_bind(host)


def is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and is_loopback_host(parts.hostname)
    except ValueError:
        return False


class MediaResolver:
    def __init__(self, storage: Storage, *, media_root: Path | None, work: Path, timeout: float) -> None:
        self.storage = storage
        self.media_root = media_root.resolve() if media_root else None
        self.work = work
        self.timeout = timeout
        work.mkdir(parents=True, exist_ok=True)

    def own_file(self, url: str) -> Path | None:
        """The stored file a loopback URL names (``.../files/<key>/<name>``), if it exists."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not is_loopback_host(parts.hostname):
            return None
        m = _FILE_PATH.search(parts.path)
        return self.storage.find(m.group(1), m.group(2)) if m else None

    def check(self, ref: str) -> None:
        """Refuse a reference the emulator would not fetch (no I/O beyond a stat)."""
        if ref.startswith("data:"):
            return
        parts = urlsplit(ref)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if not is_loopback_host(parts.hostname):
                raise DownloadRefused(f"{parts.hostname or 'no host'} is not reachable from the emulator "
                                      "(it fetches only its own storage, loopback URLs and files under its media root)")
            return
        self._local(ref)

    def _local(self, ref: str) -> Path:
        parts = urlsplit(ref)
        if parts.scheme.lower() == "file":
            path = Path(unquote(parts.path))
        elif "://" in ref or parts.scheme:
            raise DownloadRefused(f"the {parts.scheme}: scheme is not supported")
        else:
            path = Path(ref)
        if self.media_root is None:
            raise DownloadRefused("local files are not served: the emulator has no media root")
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise DownloadRefused("no such file") from None
        if not real.is_relative_to(self.media_root) or not real.is_file():
            raise DownloadRefused("the file is not under the emulator's media root")
        return real

    async def fetch(self, ref: str, *, cap: int, name: str) -> Path:
        """A local file holding the referenced media (``name`` names a download)."""
        if ref.startswith("data:"):
            return self._data(ref, cap, name)
        own = self.own_file(ref)
        if own is not None:
            self._cap(own.stat().st_size, cap)
            return own
        self.check(ref)
        parts = urlsplit(ref)
        if parts.scheme.lower() not in ("http", "https"):
            path = self._local(ref)
            self._cap(path.stat().st_size, cap)
            return path
        return await self._download(ref, cap, name)

    @staticmethod
    def _cap(size: int, cap: int) -> None:
        if size > cap:
            raise DownloadRefused(f"the file is {size} bytes, more than {cap}", too_large=True)

    def _data(self, ref: str, cap: int, name: str) -> Path:
        m = _DATA.match(ref)
        if m is None:
            raise DownloadRefused("a malformed data: URI")
        payload = ref[m.end():]
        try:
            data = base64.b64decode(payload, validate=True) if m.group(3) else unquote(payload).encode("latin-1")
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise DownloadRefused("a data: URI that does not decode") from None
        self._cap(len(data), cap)
        dest = self.work / safe_name(name)
        with atomic_open(dest) as out:
            out.write(data)
        return dest

    async def _download(self, url: str, cap: int, name: str) -> Path:
        dest = self.work / safe_name(name)
        # Loopback only, so the emulator's own self-signed certificate is fine; no proxies.
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False,
                                         verify=False) as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise DownloadRefused(f"GET answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit():
                    self._cap(int(declared), cap)
                size = 0
                with atomic_open(dest) as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        self._cap(size, cap)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise DownloadRefused(f"the download failed ({type(exc).__name__})") from None
        return dest
