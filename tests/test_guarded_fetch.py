"""The one guarded fetch, through both of its callers: result downloads and input media.

No test here reaches the network: names resolve through a fake resolver, requests go to an
injected httpx.MockTransport or to a loopback server started by the test.
"""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from kling_core.contract.models import EditResult, OutputVideo
from kling_core.errors import ProviderError, UnsafeMediaError, ValidationError
from kling_core.http.download import MAX_ATTEMPTS, download, download_result
from kling_core.media import netguard
from kling_core.media.fetch import download as media_download
from kling_core.media.fetch import fetch
from kling_core.media.netguard import IPAddress, Resolver
from kling_core.provider import ProviderContext
from kling_core.settings import MediaSettings

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20
DNS = {
    "cdn.example": "93.184.216.34",
    "other.example": "151.101.1.69",
    "loop.example": "127.0.0.1",
    "ten.example": "10.0.0.7",
    "meta.example": "169.254.169.254",
    "mapped.example": "::ffff:127.0.0.1",
}
PRIVATE_NAMES = ["loop.example", "ten.example", "meta.example", "mapped.example"]


def fake_resolve(host: str, port: int) -> list[IPAddress]:
    if host not in DNS:
        raise UnsafeMediaError(f"cannot resolve host {host!r}")
    return [ipaddress.ip_address(DNS[host])]


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Host:
    """A MockTransport that answers by the name in the Host header and records every request."""

    def __init__(self, answer: Callable[[httpx.Request, str], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request, name: httpx.Response(200, content=BODY))
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request, request.headers["host"])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part")) if folder.exists() else []


Fetcher = Callable[..., Coroutine[Any, Any, Path]]


async def as_result(
    url: str, tmp: Path, *, transport: Any = None, resolve: Resolver | None = fake_resolve,
    media: MediaSettings | None = None, expected_size: int | None = None, sleep: Sleeps | None = None,
) -> Path:
    ctx = ProviderContext(name="fal", media=media or MediaSettings(), transport=transport, sleep=Sleeps() if sleep is None else sleep)
    return await download(url, tmp / "out" / "result.mp4", expected_size, ctx=ctx, provider="fal", job_id="j1",
                          resolve=resolve)


async def as_input(
    url: str, tmp: Path, *, transport: Any = None, resolve: Resolver | None = fake_resolve,
    media: MediaSettings | None = None, expected_size: int | None = None, sleep: Sleeps | None = None,
) -> Path:
    assert expected_size is None  # input media has no announced size
    return await media_download(url, tmp / "dl", field="video", settings=media or MediaSettings(),
                                transport=transport, resolve=resolve, sleep=Sleeps() if sleep is None else sleep)


CALLERS = pytest.mark.parametrize("get", [as_result, as_input], ids=["result", "input"])


# -- refused before any request ------------------------------------------------------------


@CALLERS
@pytest.mark.parametrize("name", PRIVATE_NAMES)
def test_a_name_resolving_privately_is_refused_even_with_an_injected_transport(
    get: Fetcher, name: str, tmp_path: Path
) -> None:
    host = Host()
    with pytest.raises(UnsafeMediaError, match=rf"refusing to fetch {name}: it resolves to"):
        asyncio.run(get(f"https://{name}/v.mp4", tmp_path, transport=host.transport))
    assert host.requests == []
    assert leftovers(tmp_path) == [] and not (tmp_path / "out").exists() and not (tmp_path / "dl").exists()


def test_download_result_is_guarded_the_same_way(tmp_path: Path) -> None:
    host = Host()
    result = EditResult(video=OutputVideo(url="https://ten.example/o.mp4"), job_id="j1", provider="fal", model="kling-o1")
    ctx = ProviderContext(name="fal", transport=host.transport)
    with pytest.raises(UnsafeMediaError, match=r"10\.0\.0\.7"):
        asyncio.run(download_result(result, tmp_path / "o.mp4", ctx, resolve=fake_resolve))
    assert host.requests == []


@CALLERS
def test_an_unresolvable_name_is_refused_not_let_through(get: Fetcher, tmp_path: Path) -> None:
    host = Host()
    with pytest.raises(UnsafeMediaError, match=r"cannot resolve host 'nowhere\.example'"):
        asyncio.run(get("https://nowhere.example/v.mp4", tmp_path, transport=host.transport))
    with pytest.raises(UnsafeMediaError, match="resolves to no address"):
        asyncio.run(get("https://cdn.example/v.mp4", tmp_path, transport=host.transport, resolve=lambda h, p: []))
    assert host.requests == []


def test_the_default_resolver_refuses_a_name_dns_does_not_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    host = Host()
    with pytest.raises(UnsafeMediaError, match=r"^result\.video\.url: cannot resolve host"):
        asyncio.run(as_result("https://cdn.example/v.mp4", tmp_path, transport=host.transport, resolve=None))
    assert host.requests == []


@CALLERS
@pytest.mark.parametrize("url", ["ftp://cdn.example/v.mp4", "https://user:pw@cdn.example/v.mp4", "https://localhost/v.mp4"])
def test_other_schemes_credentials_and_local_names_are_refused(get: Fetcher, url: str, tmp_path: Path) -> None:
    host = Host()
    with pytest.raises(UnsafeMediaError):
        asyncio.run(get(url, tmp_path, transport=host.transport))
    assert host.requests == []


def test_results_need_https_unless_private_urls_are_allowed(tmp_path: Path) -> None:
    host = Host()
    with pytest.raises(UnsafeMediaError, match="https only"):
        asyncio.run(as_result("http://cdn.example/v.mp4", tmp_path, transport=host.transport))
    assert host.requests == []


# -- the connection goes to the checked address --------------------------------------------


@CALLERS
def test_the_request_goes_to_the_checked_address_with_the_original_host(get: Fetcher, tmp_path: Path) -> None:
    host = Host()
    path = asyncio.run(get("https://cdn.example/files/v.mp4?sig=abc", tmp_path, transport=host.transport))
    assert path.read_bytes() == BODY
    [request] = host.requests
    assert str(request.url) == "https://93.184.216.34/files/v.mp4?sig=abc"
    assert request.headers["host"] == "cdn.example"
    assert request.extensions["sni_hostname"] == "cdn.example"
    assert request.method == "GET"
    assert request.headers["accept-encoding"] == "identity"
    assert not {"authorization", "x-api-key", "x-key", "cookie"} & set(request.headers)


def test_a_non_default_port_stays_in_the_host_header(tmp_path: Path) -> None:
    host = Host()
    asyncio.run(as_result("https://cdn.example:8443/v.mp4", tmp_path, transport=host.transport))
    assert str(host.requests[0].url) == "https://93.184.216.34:8443/v.mp4"
    assert host.requests[0].headers["host"] == "cdn.example:8443"


def test_every_resolved_address_is_checked_not_just_the_first(tmp_path: Path) -> None:
    host = Host()

    def two(h: str, p: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")]

    with pytest.raises(UnsafeMediaError, match=r"10\.0\.0\.5"):
        asyncio.run(as_result("https://cdn.example/v.mp4", tmp_path, transport=host.transport, resolve=two))
    assert host.requests == []


# -- redirects ------------------------------------------------------------------------------


@CALLERS
@pytest.mark.parametrize("target", ["https://ten.example/x", "https://169.254.169.254/latest/meta-data", "http://[::1]/x"])
def test_a_redirect_to_a_private_address_is_refused(get: Fetcher, target: str, tmp_path: Path) -> None:
    def answer(request: httpx.Request, name: str) -> httpx.Response:
        if name == "cdn.example":
            return httpx.Response(302, headers={"location": target})
        return httpx.Response(200, content=b"secret")

    host = Host(answer)
    with pytest.raises(UnsafeMediaError):
        asyncio.run(get("https://cdn.example/v.mp4", tmp_path, transport=host.transport))
    assert [r.headers["host"] for r in host.requests] == ["cdn.example"]


@CALLERS
def test_redirects_are_rechecked_pinned_and_carry_no_cookie(get: Fetcher, tmp_path: Path) -> None:
    def answer(request: httpx.Request, name: str) -> httpx.Response:
        if name == "cdn.example":
            return httpx.Response(302, headers={"location": "https://other.example/real.mp4", "set-cookie": "s=1"})
        return httpx.Response(200, content=BODY)

    host = Host(answer)
    path = asyncio.run(get("https://cdn.example/v.mp4", tmp_path, transport=host.transport))
    assert path.read_bytes() == BODY
    assert [str(r.url) for r in host.requests] == [
        "https://93.184.216.34/v.mp4", "https://151.101.1.69/real.mp4",
    ]
    assert "cookie" not in host.requests[1].headers


# -- bodies: size checks and retries -------------------------------------------------------


def test_a_truncated_body_with_a_known_size_fails_and_leaves_no_part_file(tmp_path: Path) -> None:
    host = Host(lambda r, n: httpx.Response(200, content=BODY[:100], headers={"content-length": str(len(BODY))}))
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as info:
        asyncio.run(as_result("https://cdn.example/v.mp4", tmp_path, transport=host.transport, sleep=sleeps))
    assert info.value.code == "download_failed" and "truncated: 100 of" in str(info.value)
    assert len(host.requests) == MAX_ATTEMPTS and len(sleeps) == MAX_ATTEMPTS - 1
    assert {r.method for r in host.requests} == {"GET"}
    assert leftovers(tmp_path) == [] and not (tmp_path / "out" / "result.mp4").exists()


def test_a_body_short_of_the_reported_size_fails_too(tmp_path: Path) -> None:
    host = Host(lambda r, n: httpx.Response(200, content=BODY))
    with pytest.raises(ProviderError, match="size mismatch"):
        asyncio.run(as_result("https://cdn.example/v.mp4", tmp_path, transport=host.transport, expected_size=len(BODY) + 1))
    assert leftovers(tmp_path) == [] and not (tmp_path / "out" / "result.mp4").exists()


def test_a_truncated_input_is_a_validation_error_naming_the_field(tmp_path: Path) -> None:
    host = Host(lambda r, n: httpx.Response(200, content=BODY[:10], headers={"content-length": str(len(BODY))}))
    with pytest.raises(ValidationError, match=r"^video: could not download https://cdn\.example/v\.mp4: .*truncated"):
        asyncio.run(as_input("https://cdn.example/v.mp4?token=t", tmp_path, transport=host.transport))
    assert leftovers(tmp_path) == [] and list((tmp_path / "dl").iterdir()) == []


def test_a_transient_failure_is_retried_as_a_get(tmp_path: Path) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, content=BODY)])
    host = Host(lambda r, n: next(answers))
    sleeps = Sleeps()
    path = asyncio.run(as_input("https://cdn.example/v.mp4", tmp_path, transport=host.transport, sleep=sleeps))
    assert path.read_bytes() == BODY and len(sleeps) == 1
    assert [r.method for r in host.requests] == ["GET", "GET"]


def test_the_size_cap_applies_to_the_stream(tmp_path: Path) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    host = Host(lambda r, n: httpx.Response(200, content=chunks()))  # no Content-Length to refuse early
    media = MediaSettings(max_download_bytes=2500)
    with pytest.raises(UnsafeMediaError, match="over the 2500-byte limit"):
        asyncio.run(fetch("https://cdn.example/v.mp4", tmp_path / "v.mp4", settings=media, field="video",
                          transport=host.transport, resolve=fake_resolve))
    assert list(tmp_path.iterdir()) == []


# -- the explicit switch -------------------------------------------------------------------


class _Loopback(http.server.BaseHTTPRequestHandler):
    hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("host", ""))
        self.send_response(200)
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def loopback_port() -> Iterator[int]:
    _Loopback.hosts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Loopback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@CALLERS
def test_allow_private_urls_lets_loopback_through_and_nothing_else_does(
    get: Fetcher, loopback_port: int, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{loopback_port}/v.mp4"
    with pytest.raises(UnsafeMediaError, match="allow_private_urls"):
        asyncio.run(get(url, tmp_path))
    assert _Loopback.hosts == []
    path = asyncio.run(get(url, tmp_path, media=MediaSettings(allow_private_urls=True)))
    assert path.read_bytes() == BODY and _Loopback.hosts == [f"127.0.0.1:{loopback_port}"]


def test_a_name_is_pinned_to_its_checked_address_over_a_real_socket(loopback_port: int, tmp_path: Path) -> None:
    # loop.example resolves (fakely) to 127.0.0.1: the real transport connects there and the
    # server sees the name, not the address, in the Host header.
    allow = MediaSettings(allow_private_urls=True)
    path = asyncio.run(as_input(f"http://loop.example:{loopback_port}/v.mp4", tmp_path, media=allow))
    assert path.read_bytes() == BODY
    assert _Loopback.hosts == [f"loop.example:{loopback_port}"]


def test_the_default_resolver_is_looked_up_at_call_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Callers that cannot pass a resolver (the client's save) still get the module's one.
    from kling_core.media.samples import make_clip

    video = make_clip(tmp_path / "src" / "v.mp4", duration=1.0, size=(160, 120), audio=False).read_bytes()
    monkeypatch.setattr(netguard, "resolve", fake_resolve)
    host = Host(lambda request, name: httpx.Response(200, content=video))
    ctx = ProviderContext(name="fal", transport=host.transport)
    result = EditResult(video=OutputVideo(url="https://cdn.example/o.mp4"), job_id="j1", provider="fal", model="kling-o1")
    assert asyncio.run(download_result(result, tmp_path / "o.mp4", ctx)).read_bytes() == video
    assert host.requests[0].url.host == "93.184.216.34"
