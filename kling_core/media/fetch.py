"""The one guarded fetch for every URL we download: input media and job results alike.

- http(s) only, never ``user:password@``; https only when the caller requires it;
- every address the host resolves to must be public unless ``media.allow_private_urls``
  (:mod:`kling_core.media.netguard`); a name that does not resolve is refused. A test may
  inject a transport and a resolver, but neither switches the check off;
- the connection goes to the address that was checked, with the original host in the
  ``Host`` header and TLS SNI, so a second DNS answer cannot swap in another one (rebinding);
- redirects are followed by hand (at most ``MAX_REDIRECTS``), each hop checked again;
- no credential, no cookie ever kept (not between hops, not between downloads), no proxy or
  netrc from the environment; only GETs;
- one shared client per event loop (:func:`shared_client`): one TLS context (the CA bundle is
  loaded once per process) and pooled connections kept per (scheme, checked address, port,
  TLS name), so a connection is reused only for the same checked address *and* the name its
  certificate was verified for; at most ``DOWNLOADS_AT_ONCE`` GETs run at once, the rest wait
  their turn before the pool (a test's injected transport gets a client of its own);
- the body streams to a ``.part`` file beside the target (:mod:`kling_core.files`), capped at
  ``media.max_download_bytes`` and checked against Content-Length and the expected size; the
  bytes counted are the bytes received: we ask for ``identity``, and a body sent with any other
  Content-Encoding is refused unread (decoded, a few KB would be many MB in memory first);
- transient failures (408, 429, 5xx, transport errors, a short body) are retried as GETs,
  ``MAX_ATTEMPTS`` in all, after the host's Retry-After where it is longer than our backoff; a
  Retry-After over ``MAX_RETRY_AFTER`` ends the download with a retryable RateLimitedError
  carrying the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import http.cookiejar
import ipaddress
import os
import ssl
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import attrs
import httpx

from kling_core.backoff import backoff_delays
from kling_core.errors import ProviderError, ResultExpiredError, UnsafeMediaError, ValidationError
from kling_core.files import CHUNK, StreamIncomplete, StreamTooLarge, write_chunks, write_chunks_atomic
from kling_core.media import netguard
from kling_core.media.netguard import IPAddress, Resolver
from kling_core.releasing_stream import ReleasingStream
from kling_core.settings import MediaSettings, PollSettings

MAX_ATTEMPTS = 5
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0
DNS_TIMEOUT = 10.0
RETRY_BACKOFF = PollSettings(initial=1.0, factor=2.0, max=16.0, jitter=0.25)
# The longest Retry-After a download waits out (poll.max_retry_after's default): a longer one
# ends it with a RateLimitedError that carries the wait.
MAX_RETRY_AFTER = PollSettings().max_retry_after
TOO_MANY_REDIRECTS = "too_many_redirects"  # ProviderError.code
# GETs the shared download client runs at once (per event loop), and the connections each
# pinned address may hold; at most MAX_POOLS addresses keep a pool, the least recently used
# idle one is closed past that.
DOWNLOADS_AT_ONCE = 16
MAX_POOLS = 32

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Sleep = Callable[[float], Awaitable[None]]


class _Transient(Exception):
    """One attempt failed in a way another GET may fix; ``delay``: the host's Retry-After, if any."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class StreamEncoded(StreamIncomplete):
    """The body came with a Content-Encoding (gzip, ...): refused unread, nothing kept.

    A StreamIncomplete, so a caller that cannot keep a body it was sent treats this one alike.
    """


async def fetch(
    url: str,
    dest: Path,
    *,
    settings: MediaSettings,
    field: str,
    expected_size: int | None = None,
    require_https: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    resolve: Resolver | None = None,
    sleep: Sleep = asyncio.sleep,
    provider: str = "download",
    job_id: str | None = None,
    in_place: bool = False,
) -> Path:
    """GET ``url`` into the file ``dest`` under every guard above; return ``dest``.

    ``in_place``: ``dest`` is the caller's own staging file (it exists, the caller holds it
    and renames it when done): the body is written into it, truncated for each attempt,
    instead of replacing it atomically.

    ``settings.allow_private_urls`` is the only switch for private addresses. ``resolve``
    replaces DNS (tests with a fake host name); ``transport`` replaces the network (tests).
    Raises UnsafeMediaError (naming ``field``) for what is refused: scheme, address, a name
    that does not resolve, the size cap. The host's failures are ProviderError (with
    ``provider``/``job_id``): ResultExpiredError for 404/410, code ``download_failed`` when
    the retries ran out, code ``TOO_MANY_REDIRECTS``.
    """
    job = _Fetch(
        url=_canonical(url, field), dest=Path(dest), settings=settings, field=field, expected_size=expected_size,
        require_https=require_https, resolve=resolve, provider=provider, job_id=job_id, in_place=in_place,
    )
    delays = backoff_delays(RETRY_BACKOFF)
    last = ""
    async with _client_for(transport) as (client, gate):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with gate:  # one turn per GET, not across the backoff sleep
                    await job.attempt(client)
                return job.dest
            except _Transient as exc:
                last = str(exc)
                if attempt < MAX_ATTEMPTS:
                    await sleep(max(next(delays), exc.delay or 0.0))
    raise ProviderError(
        f"downloading failed after {MAX_ATTEMPTS} attempts: {last}",
        provider=provider, code="download_failed", retryable=True, job_id=job_id,
    )


@attrs.frozen
class _Fetch:
    url: str
    dest: Path
    settings: MediaSettings
    field: str
    expected_size: int | None
    require_https: bool
    resolve: Resolver | None
    provider: str
    job_id: str | None
    in_place: bool = False

    def timeout(self) -> httpx.Timeout:
        limit = self.settings.download_timeout
        return httpx.Timeout(limit, connect=min(CONNECT_TIMEOUT, limit))

    async def attempt(self, client: httpx.AsyncClient) -> None:
        """One GET, redirects included, from the first URL again."""
        current = self.url
        for _hop in range(MAX_REDIRECTS + 1):
            addr, port = await self._checked(current)
            pinned, headers, extensions = _pinned(current, addr, port)
            # Built whole here (no client defaults to merge); the client keeps no cookie
            # (_NoCookies), so a hop's Set-Cookie never travels on.
            headers.update({"accept": "*/*", "user-agent": _user_agent()})
            extensions["timeout"] = self.timeout().as_dict()
            request = httpx.Request("GET", pinned, headers=headers, extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                raise _Transient(f"{type(exc).__name__} while fetching {safe_url(current)}") from exc
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise self._error(f"redirect without a Location header from {safe_url(current)}")
                    current = _canonical(urljoin(current, location), self.field)
                    continue
                self._check_status(response, current)
                await self._save(response, current)
                return
            except httpx.TransportError as exc:  # the body broke off
                raise _Transient(f"{type(exc).__name__} while reading {safe_url(current)}") from exc
            finally:
                await response.aclose()
        raise self._error(f"more than {MAX_REDIRECTS} redirects from {safe_url(self.url)}", code=TOO_MANY_REDIRECTS)

    async def _checked(self, url: str) -> tuple[IPAddress, int]:
        if self.require_https and urlsplit(url).scheme.lower() == "http":
            raise UnsafeMediaError(
                "plain http downloads are refused (https only); set media.allow_private_urls for a test server",
                field=self.field,
            )
        if _names_an_address(url):  # nothing to resolve: checked here, without a thread
            return netguard.checked_address(url, field=self.field, allow_private=self.settings.allow_private_urls,
                                            resolver=self.resolve)
        # The resolver may block (getaddrinfo): off the event loop, with a deadline.
        check = asyncio.to_thread(
            netguard.checked_address, url, field=self.field,
            allow_private=self.settings.allow_private_urls, resolver=self.resolve,
        )
        try:
            return await asyncio.wait_for(check, DNS_TIMEOUT)
        except TimeoutError:
            raise UnsafeMediaError(f"resolving the host of {safe_url(url)} timed out", field=self.field) from None

    def _check_status(self, response: httpx.Response, url: str) -> None:
        # kling_core.http imports this module (result downloads): take its retry policy late.
        from kling_core.errors import RateLimitedError
        from kling_core.http.retry import RETRYABLE_STATUSES, classify

        status = response.status_code
        if status == 200:
            return
        if status in (404, 410):
            raise ResultExpiredError(
                f"the host no longer holds {safe_url(url)} (it expired or was deleted)",
                provider=self.provider, status_code=status, job_id=self.job_id,
            )
        decision = classify("download", status, response.headers, max_retry_after=MAX_RETRY_AFTER)
        if decision.retry:
            raise _Transient(f"HTTP {status} from {safe_url(url)}", delay=decision.delay)
        if decision.delay is not None and status in RETRYABLE_STATUSES:
            # The host asked for a longer wait than we hold a download open for: the caller decides when.
            raise RateLimitedError(
                f"the host asked to wait {decision.delay:.0f} s before fetching {safe_url(url)} again, "
                f"longer than the {MAX_RETRY_AFTER:.0f} s a download waits",
                retry_after=decision.delay, provider=self.provider, status_code=status, job_id=self.job_id,
            )
        raise self._error(f"downloading {safe_url(url)} failed", status_code=status)

    async def _save(self, response: httpx.Response, url: str) -> None:
        self.dest.parent.mkdir(parents=True, exist_ok=True)  # not for a refused URL
        limit = self.settings.max_download_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise UnsafeMediaError(
                f"download exceeds the size limit: {declared} bytes is over the {limit}-byte limit", field=self.field
            )
        try:
            if self.in_place:
                await write_stream_into(response, self.dest, cap=limit, expected_size=self.expected_size)
            else:
                await write_stream(response, self.dest, cap=limit, expected_size=self.expected_size)
        except StreamTooLarge:
            raise UnsafeMediaError(f"download exceeds the size limit: over the {limit}-byte limit", field=self.field) from None
        except StreamEncoded as exc:
            raise UnsafeMediaError(f"refusing {safe_url(url)}: {exc}", field=self.field) from None
        except StreamIncomplete as exc:
            raise _Transient(f"{exc} from {safe_url(url)}") from None

    def _error(self, message: str, *, status_code: int | None = None, code: str | None = None) -> ProviderError:
        return ProviderError(message, provider=self.provider, status_code=status_code, code=code, job_id=self.job_id)


# Content codings with a decoder (HTTP's registry; httpx decodes the first five): a body in one
# of them is compressed, and is refused rather than expanded past the size cap.
_DECODED_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd", "compress", "x-compress"})


def _raw_body(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as sent, never decoded: refused (StreamEncoded) if it came with a Content-Encoding.

    httpx's ``aiter_bytes`` would decode gzip/deflate/br whatever we asked for, a whole network
    read at a time, before any byte cap could count it (a 64 KB gzip body is 64 MB decoded).
    """
    coding = response.headers.get("content-encoding", "")
    # Only what a decoder would expand is refused; a coding nothing decodes (a CDN's "none" or
    # "binary") leaves the bytes as they are, as httpx itself would, and the result check judges them.
    codings = [c.strip().lower() for c in coding.split(",") if c.strip().lower() in _DECODED_CODINGS]
    if codings:
        raise StreamEncoded(
            f"the host sent the body with Content-Encoding: {coding.strip()}; a media file is fetched "
            "unencoded (Accept-Encoding: identity), so it was refused unread"
        )
    if response.is_stream_consumed:  # already read into memory (a mock's answer): no encoding, so as sent
        return response.aiter_bytes(CHUNK)
    return response.aiter_raw(CHUNK)


def _size_check(response: httpx.Response, expected_size: int | None) -> Callable[[int], None]:
    declared = response.headers.get("content-length")
    length = int(declared) if declared and declared.isdigit() else None

    def verify(count: int) -> None:
        if length is not None and count != length:
            raise StreamIncomplete(f"truncated: {count} of {length} bytes")
        if expected_size is not None and count != expected_size:
            raise StreamIncomplete(f"size mismatch: {count} bytes, the host reported {expected_size}")

    return verify


async def write_stream(response: httpx.Response, dest: Path, *, cap: int, expected_size: int | None = None) -> int:
    """Stream a response body to ``dest`` atomically, never whole in memory; return the byte count.

    The file appears at ``dest`` only when complete: at most ``cap`` bytes (else
    StreamTooLarge), matching the Content-Length and ``expected_size`` where given (else
    StreamIncomplete: a truncated body is an error, not a shorter file). A body with a
    Content-Encoding is refused before a byte is read (StreamEncoded, a StreamIncomplete).
    """
    verify = _size_check(response, expected_size)
    return await write_chunks_atomic(dest, _raw_body(response), limit=cap, verify=verify)


async def write_stream_into(response: httpx.Response, dest: Path, *, cap: int, expected_size: int | None = None) -> int:
    """Like :func:`write_stream`, into the existing file ``dest`` (truncated first), then fsynced.

    For a caller's staging file that is renamed into place only after further checks; on
    StreamTooLarge or StreamIncomplete the file is left empty.
    """
    verify = _size_check(response, expected_size)
    with open(dest, "r+b") as fh:  # the same file (inode) the caller holds: not replaced
        fh.truncate(0)
        try:
            count = await write_chunks(fh, _raw_body(response), limit=cap)
            verify(count)
        except BaseException:
            fh.truncate(0)
            raise
        fh.flush()
        os.fsync(fh.fileno())
    return count


def _tls() -> ssl.SSLContext:
    # trust_env is off (it would send ~/.netrc credentials and hand the checked address to a
    # proxy that sees another network), but a CA bundle the user points at still counts.
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """One verifying TLS context per CA bundle: loading the bundle costs tens of milliseconds."""
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuses every cookie: a download client shared by every job and host keeps none."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _new_client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                             cookies=http.cookiejar.CookieJar(policy=_NoCookies()))


class _PinnedPools(httpx.AsyncBaseTransport):
    """A connection pool per (scheme, checked address, port, TLS name), all with one TLS context.

    httpx pools by the URL's host alone, here the checked address: two names on one address
    would share a connection whose certificate was verified for only one of them. Keyed by
    the TLS name too, a connection serves only the name it was verified for.
    """

    def __init__(self) -> None:
        self._pools: OrderedDict[tuple[str, str, int | None, str | None], httpx.AsyncHTTPTransport] = OrderedDict()
        self._busy: dict[tuple[str, str, int | None, str | None], int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sni = request.extensions.get("sni_hostname")
        key = (request.url.scheme, request.url.host, request.url.port, str(sni) if sni else None)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = httpx.AsyncHTTPTransport(
                verify=_tls(), trust_env=False,
                limits=httpx.Limits(max_connections=DOWNLOADS_AT_ONCE, max_keepalive_connections=DOWNLOADS_AT_ONCE),
            )
            await self._evict()
        self._pools.move_to_end(key)
        self._busy[key] = self._busy.get(key, 0) + 1

        def done() -> None:
            self._busy[key] -= 1

        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            done()
            raise
        response.stream = ReleasingStream(response.stream, done)  # busy until the body is closed
        return response

    async def _evict(self) -> None:
        for key in list(self._pools):
            if len(self._pools) <= MAX_POOLS:
                return
            if not self._busy.get(key):
                self._busy.pop(key, None)
                await self._pools.pop(key).aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()


class _Shared:
    """The download client of one event loop, its turn-taking, and who is using it."""

    def __init__(self) -> None:
        self.client = _new_client(_PinnedPools())
        self.gate = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self.users = 0
        self.retired = False


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Shared] = weakref.WeakKeyDictionary()


def shared_client() -> httpx.AsyncClient:
    """The running event loop's shared download client (made on first use)."""
    return _shared().client


def _shared() -> _Shared:
    loop = asyncio.get_running_loop()
    shared = _SHARED.get(loop)
    if shared is None:
        shared = _SHARED[loop] = _Shared()
    return shared


async def close_shared_client() -> None:
    """Close this event loop's shared download client once no download uses it (the next
    download makes a new one). Called by the edit client's ``aclose``."""
    shared = _SHARED.pop(asyncio.get_running_loop(), None)
    if shared is not None:
        shared.retired = True
        if shared.users == 0:
            await shared.client.aclose()


@contextlib.asynccontextmanager
async def _client_for(
    transport: httpx.AsyncBaseTransport | None,
) -> AsyncIterator[tuple[httpx.AsyncClient, contextlib.AbstractAsyncContextManager[Any]]]:
    """The client a fetch uses and its turn-taking: the shared one, or (a test's transport) its own."""
    if transport is not None:
        async with _new_client(transport) as client:
            yield client, contextlib.nullcontext()
        return
    shared = _shared()
    shared.users += 1
    try:
        yield shared.client, shared.gate
    finally:
        shared.users -= 1
        if shared.retired and shared.users == 0:
            await shared.client.aclose()


@functools.cache
def _user_agent() -> str:
    from kling_core import __version__

    return f"kling-core/{__version__}"


def _names_an_address(url: str) -> bool:
    """Is the URL's host an IP address literal (which the check never resolves)?"""
    try:
        host = urlsplit(url).hostname
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def _canonical(url: str, field: str) -> str:
    """The URL as httpx will send it (IDNA host, escaped path), so every check sees that form."""
    try:
        return str(httpx.URL(url))
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise UnsafeMediaError(f"not a valid URL: {exc}", field=field) from None


def _pinned(url: str, addr: IPAddress, port: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, plus the Host header and SNI that keep it honest."""
    parts = urlsplit(url)
    host_literal = f"[{addr}]" if addr.version == 6 else str(addr)
    pinned = urlunsplit((parts.scheme, f"{host_literal}:{port}", parts.path or "/", parts.query, ""))
    hostname = parts.hostname or ""
    default_port = 443 if parts.scheme.lower() == "https" else 80
    name = f"[{hostname}]" if ":" in hostname else hostname
    host_header = name if port == default_port else f"{name}:{port}"
    # identity: the byte count must match Content-Length, which a decoded body would not.
    headers = {"host": host_header, "accept-encoding": "identity"}
    extensions: dict[str, Any] = {}
    if parts.scheme.lower() == "https":
        extensions["sni_hostname"] = hostname
    return pinned, headers, extensions


def safe_url(url: str) -> str:
    """The URL without user info or query string (either may carry a secret)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


# -- input media ---------------------------------------------------------------------------


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
    resolve: Resolver | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Path:
    """Fetch the input media ``url`` into ``dest_dir``; return the local path.

    A URL that cannot be fetched is a bad input: ValidationError naming ``field``; what the
    guard refuses (too many redirects included) is UnsafeMediaError.
    """
    settings = settings or MediaSettings()
    try:
        return await fetch(
            url, dest_dir / url_file_name(url), settings=settings, field=field,
            transport=transport, resolve=resolve, sleep=sleep,
        )
    except ProviderError as exc:
        if exc.code == TOO_MANY_REDIRECTS:
            raise UnsafeMediaError(exc.reason, field=field) from None
        why = f"HTTP {exc.status_code}" if exc.status_code is not None else exc.reason
        raise ValidationError.single(field, f"could not download {safe_url(url)}: {why}") from None
