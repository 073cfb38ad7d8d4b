"""Result downloads: streamed, verified, retried as GETs only, never carrying a credential."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from loopback_servers import serve

from kling_core.contract.models import EditResult, OutputVideo
from kling_core.errors import ProviderError, RateLimitedError, ResultExpiredError, UnsafeMediaError
from kling_core.http import download, download_result
from kling_core.http.download import MAX_ATTEMPTS, MAX_REDIRECTS
from kling_core.media.netguard import IPAddress
from kling_core.provider import ProviderContext
from kling_core.settings import MediaSettings

URL = "https://v3b.fal.media/files/b/elephant/output.mp4"
BODY = b"\x00\x00\x00\x18ftypmp42" + b"x" * 5000


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


# An injected transport no longer switches the address guard off: every name is resolved
# and checked. These tests inject a fake resolver (public addresses, never contacted), and
# since the request then goes to the pinned address, the router matches on its Host header.
DNS = {"v3b.fal.media": "93.184.216.34", "other.example.com": "151.101.1.69", "loop.example.com": "104.16.1.1"}


def fake_resolve(host: str, port: int) -> list[IPAddress]:
    if host not in DNS:
        raise UnsafeMediaError(f"cannot resolve host {host!r}")
    return [ipaddress.ip_address(DNS[host])]


def unpinned(request: httpx.Request) -> httpx.Request:
    """The request as addressed by name: the Host header back in the URL."""
    assert request.url.host in DNS.values(), request.url  # it went to the checked address
    url = request.url.copy_with(netloc=request.headers["host"].encode())
    return httpx.Request(request.method, url, headers=request.headers, extensions=request.extensions)


def by_name(router: respx.Router) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: router.handler(unpinned(request)))


def ctx_for(router: respx.Router | None = None, **media: Any) -> tuple[ProviderContext, Sleeps]:
    sleeps = Sleeps()
    transport = by_name(router) if router is not None else None
    return ProviderContext(name="fal", media=MediaSettings(**media), transport=transport, sleep=sleeps), sleeps


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".part"))


def test_streams_to_disk_and_checks_content_length(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(URL).mock(return_value=httpx.Response(200, content=BODY, headers={"content-length": str(len(BODY))}))
    ctx, _ = ctx_for(router)
    dest = tmp_path / "out" / "result.mp4"
    assert asyncio.run(download(URL, dest, len(BODY), ctx=ctx, resolve=fake_resolve)) == dest
    assert dest.read_bytes() == BODY
    assert leftovers(dest.parent) == []


def test_truncated_body_is_retried_as_a_get(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.get(URL).mock(
        side_effect=[
            httpx.Response(200, content=BODY[:100], headers={"content-length": str(len(BODY))}),
            httpx.Response(200, content=BODY, headers={"content-length": str(len(BODY))}),
        ]
    )
    ctx, sleeps = ctx_for(router)
    dest = tmp_path / "r.mp4"
    asyncio.run(download(URL, dest, None, ctx=ctx, resolve=fake_resolve))
    assert route.call_count == 2 and len(sleeps) == 1
    assert dest.read_bytes() == BODY and leftovers(tmp_path) == []


def test_size_mismatch_with_reported_size_is_retried(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.get(URL).mock(
        side_effect=[httpx.Response(200, content=BODY[:10]), httpx.Response(200, content=BODY)]
    )
    ctx, _ = ctx_for(router)
    asyncio.run(download(URL, tmp_path / "r.mp4", len(BODY), ctx=ctx, resolve=fake_resolve))
    assert route.call_count == 2


@pytest.mark.parametrize("status", [404, 410])
def test_gone_results_raise_result_expired_without_retry(tmp_path: Path, status: int) -> None:
    router = respx.Router()
    route = router.get(URL).mock(return_value=httpx.Response(status))
    ctx, sleeps = ctx_for(router)
    with pytest.raises(ResultExpiredError) as info:
        asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, provider="fal", job_id="j1", resolve=fake_resolve))
    assert route.call_count == 1 and sleeps == []
    assert info.value.job_id == "j1" and info.value.status_code == status
    assert not (tmp_path / "r.mp4").exists()


def test_transient_failures_are_bounded(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.get(URL).mock(side_effect=[httpx.ReadTimeout("slow")] * 3 + [httpx.Response(503)] * 10)
    ctx, sleeps = ctx_for(router)
    with pytest.raises(ProviderError) as info:
        asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert route.call_count == MAX_ATTEMPTS and len(sleeps) == MAX_ATTEMPTS - 1
    assert info.value.retryable and info.value.code == "download_failed"
    assert leftovers(tmp_path) == []


def test_a_result_host_asking_for_a_long_wait_keeps_it_in_the_error(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.get(URL).mock(return_value=httpx.Response(429, headers={"retry-after": "600"}))
    ctx, sleeps = ctx_for(router)
    result = EditResult(job_id="j-1", provider="fal", model="kling-o1", video=OutputVideo(url=URL))
    with pytest.raises(RateLimitedError) as info:
        asyncio.run(download_result(result, tmp_path / "o.mp4", ctx, resolve=fake_resolve, client_key="k-1"))
    assert route.call_count == 1 and sleeps == []  # not waited out here: the caller decides when
    assert info.value.retry_after == 600 and info.value.retryable and info.value.job_id == "j-1"
    assert "kling jobs resume k-1" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_other_4xx_is_not_retried(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.get(URL).mock(return_value=httpx.Response(403))
    ctx, _ = ctx_for(router)
    with pytest.raises(ProviderError):
        asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert route.call_count == 1


def test_size_cap_aborts_and_leaves_nothing(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(URL).mock(return_value=httpx.Response(200, content=BODY))  # no content-length check first
    ctx, _ = ctx_for(router, max_download_bytes=1000)
    with pytest.raises(UnsafeMediaError):
        asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert list(tmp_path.iterdir()) == []

    router = respx.Router()
    route = router.get(URL).mock(return_value=httpx.Response(200, content=BODY, headers={"content-length": str(len(BODY))}))
    ctx, _ = ctx_for(router, max_download_bytes=1000)
    with pytest.raises(UnsafeMediaError, match="exceeds"):
        asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert route.call_count == 1 and list(tmp_path.iterdir()) == []


def test_redirects_are_followed_revalidated_and_carry_no_credentials(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    router = respx.Router()
    router.get(URL).mock(return_value=httpx.Response(302, headers={"location": "https://other.example.com/v.mp4"}))
    router.get("https://other.example.com/v.mp4").mock(return_value=httpx.Response(200, content=BODY))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(unpinned(request))
        return router.handler(seen[-1])

    ctx = ProviderContext(name="fal", transport=httpx.MockTransport(handler))
    asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert [str(r.url) for r in seen] == [URL, "https://other.example.com/v.mp4"]
    for r in seen:
        assert not {"authorization", "x-api-key", "x-key"} & set(r.headers.keys())


def test_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(URL).mock(return_value=httpx.Response(302, headers={"location": "https://169.254.169.254/latest/meta-data"}))
    meta = router.get("https://169.254.169.254/latest/meta-data").mock(return_value=httpx.Response(200, content=b"x"))
    ctx, _ = ctx_for(router)
    with pytest.raises(UnsafeMediaError):
        asyncio.run(download(URL, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert meta.call_count == 0


def test_too_many_redirects(tmp_path: Path) -> None:
    router = respx.Router()
    router.get(url__regex=r"https://loop\.example\.com/\d+").mock(
        side_effect=lambda req: httpx.Response(302, headers={"location": f"/{int(req.url.path[1:]) + 1}"})
    )
    ctx, _ = ctx_for(router)
    with pytest.raises(ProviderError, match="redirects"):
        asyncio.run(download("https://loop.example.com/0", tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert MAX_REDIRECTS == 5


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.mp4",
        "https://[::1]/a.mp4",
        "https://[::ffff:127.0.0.1]/a.mp4",
        "https://169.254.169.254/a.mp4",
        "https://10.0.0.5/a.mp4",
        "https://100.64.0.1/a.mp4",
        "https://[fc00::1]/a.mp4",
        "https://localhost/a.mp4",
        "http://v3b.fal.media/a.mp4",  # plain http outside tests
        "ftp://v3b.fal.media/a.mp4",
    ],
)
def test_unsafe_urls_are_refused_before_any_request(tmp_path: Path, url: str) -> None:
    router = respx.Router()
    route = router.route().mock(return_value=httpx.Response(200, content=BODY))
    ctx, _ = ctx_for(router)
    with pytest.raises(UnsafeMediaError):
        asyncio.run(download(url, tmp_path / "r.mp4", ctx=ctx, resolve=fake_resolve))
    assert route.call_count == 0


def test_download_result_copies_what_the_provider_wrote_into_its_work_dir(tmp_path: Path) -> None:
    # Segmind v1 saves the answer body into its work dir and names it by file:// URL.
    from kling_core.media.samples import make_clip

    work = tmp_path / "work"
    src = make_clip(work / "segmind-k1.mp4", duration=1.0, size=(160, 120), audio=False)
    size = src.stat().st_size
    result = EditResult(
        video=OutputVideo(url=src.as_uri(), file_size=size), job_id="v1-1", provider="segmind", model="kling-o1"
    )
    ctx = ProviderContext(name="segmind", work_dir=work)
    dest = tmp_path / "out.mp4"
    assert asyncio.run(download_result(result, dest, ctx)) == dest
    assert dest.read_bytes() == src.read_bytes()

    bad = EditResult(video=OutputVideo(url=src.as_uri(), file_size=3), job_id="v1-1", provider="segmind", model="kling-o1")
    with pytest.raises(ProviderError):
        asyncio.run(download_result(bad, tmp_path / "other.mp4", ctx))
    gone = EditResult(video=OutputVideo(url=(work / "nope.mp4").as_uri()), job_id="v1-1", provider="segmind",
                      model="kling-o1")
    with pytest.raises(ResultExpiredError):
        asyncio.run(download_result(gone, tmp_path / "x.mp4", ctx))
    assert not (tmp_path / "other.mp4").exists() and not (tmp_path / "x.mp4").exists()
    assert leftovers(tmp_path) == []


# -- over a real socket: a loopback server ------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).hits.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/short":
            self.send_response(200)
            self.send_header("content-length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:50])
            return
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def loopback() -> Iterator[str]:
    _Handler.hits = []
    with serve(_Handler) as base:
        yield base


def test_loopback_download_needs_the_private_flag(tmp_path: Path, loopback: str) -> None:
    ctx = ProviderContext(name="fal", media=MediaSettings(allow_private_urls=False))
    with pytest.raises(UnsafeMediaError):
        asyncio.run(download(f"{loopback}/video.mp4", tmp_path / "r.mp4", ctx=ctx))
    assert _Handler.hits == []

    sleeps = Sleeps()
    ctx = ProviderContext(name="fal", media=MediaSettings(allow_private_urls=True), sleep=sleeps)
    dest = tmp_path / "r.mp4"
    asyncio.run(download(f"{loopback}/video.mp4", dest, len(BODY), ctx=ctx))
    assert dest.read_bytes() == BODY
    assert not {"authorization", "x-api-key"} & set(_Handler.hits[0])

    with pytest.raises(ProviderError):
        asyncio.run(download(f"{loopback}/short", tmp_path / "s.mp4", ctx=ctx))
    assert len(sleeps) == MAX_ATTEMPTS - 1
    assert not (tmp_path / "s.mp4").exists() and leftovers(tmp_path) == []
