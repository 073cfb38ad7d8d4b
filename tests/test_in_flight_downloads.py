"""The shared download client: connection reuse keyed by the checked address and TLS name,
no cookie ever kept, a bound on GETs at once, one TLS context. Over a real loopback socket."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from kling_core.http import download
from kling_core.media import fetch
from kling_core.media.netguard import IPAddress
from kling_core.provider import ProviderContext
from kling_core.settings import MediaSettings

BODY = b"\x00\x00\x00\x18ftypmp42" + b"v" * 3000


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a reused connection shows as one client port
    ports: ClassVar[list[int]] = []
    cookies: ClassVar[list[str | None]] = []
    hold: ClassVar[threading.Event | None] = None
    lock = threading.Lock()
    active: ClassVar[int] = 0
    most: ClassVar[int] = 0

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.ports.append(self.client_address[1])
            cls.cookies.append(self.headers.get("cookie"))
            cls.active += 1
            cls.most = max(cls.most, cls.active)
        try:
            if cls.hold is not None:
                cls.hold.wait(30)
            self.send_response(200)
            self.send_header("content-type", "video/mp4")
            self.send_header("content-length", str(len(BODY)))
            self.send_header("set-cookie", "session=abc; Path=/")
            self.end_headers()
            self.wfile.write(BODY)
        finally:
            with cls.lock:
                cls.active -= 1

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def loopback() -> Iterator[str]:
    _Handler.ports, _Handler.cookies, _Handler.hold, _Handler.active, _Handler.most = [], [], None, 0, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if _Handler.hold is not None:
            _Handler.hold.set()
        server.shutdown()
        server.server_close()


async def until(condition: Any) -> None:
    """Wait for the server threads to get somewhere (bounded: a broken test fails, never hangs)."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the loopback server never got there")


CTX = ProviderContext(name="fal", media=MediaSettings(allow_private_urls=True))


def test_downloads_reuse_one_connection_and_carry_no_cookie(tmp_path: Path, loopback: str) -> None:
    async def main() -> None:
        client = fetch.shared_client()
        for i in range(3):
            await download(f"{loopback}/out{i}.mp4", tmp_path / f"{i}.mp4", len(BODY), ctx=CTX)
            assert fetch.shared_client() is client
        await fetch.close_shared_client()

    asyncio.run(main())
    assert len(_Handler.ports) == 3 and len(set(_Handler.ports)) == 1  # one TCP connection for all three
    assert _Handler.cookies == [None, None, None]  # the Set-Cookie of each answer was never kept
    assert all((tmp_path / f"{i}.mp4").read_bytes() == BODY for i in range(3))


def test_names_on_one_address_do_not_share_connections(tmp_path: Path, loopback: str) -> None:
    """Two host names resolving to one address: one pool per TLS name (over http the name
    only selects the pool, the point of the key being https, where it is the verified name)."""
    port = int(loopback.rsplit(":", 1)[1])

    def resolve(host: str, p: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    async def main() -> None:
        pools = fetch._PinnedPools()
        async with httpx.AsyncClient(transport=pools) as client:
            for name in ("a.example", "b.example", "a.example"):
                response = await client.get(f"http://127.0.0.1:{port}/x", extensions={"sni_hostname": name})
                assert response.content == BODY
        assert len(pools._pools) == 0  # closed with the client
        # the same through the guarded fetch: both names go to the one checked address
        for name in ("one.example", "two.example"):
            await fetch.fetch(f"http://{name}:{port}/v.mp4", tmp_path / f"{name}.mp4", settings=CTX.media,
                              field="f", resolve=resolve)
        await fetch.close_shared_client()

    asyncio.run(main())
    assert len(set(_Handler.ports[:3])) == 2  # a.example twice on one connection, b.example on another


def test_idle_pools_past_the_cap_are_closed(monkeypatch: pytest.MonkeyPatch, loopback: str) -> None:
    monkeypatch.setattr(fetch, "MAX_POOLS", 2)
    port = int(loopback.rsplit(":", 1)[1])

    async def main() -> None:
        pools = fetch._PinnedPools()
        async with httpx.AsyncClient(transport=pools) as client:
            for name in ("a", "b", "c"):
                await client.get(f"http://127.0.0.1:{port}/x", extensions={"sni_hostname": name})
            assert [key[3] for key in pools._pools] == ["b", "c"]

    asyncio.run(main())


def test_at_most_the_bound_of_gets_run_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              loopback: str) -> None:
    monkeypatch.setattr(fetch, "DOWNLOADS_AT_ONCE", 3)
    _Handler.hold = threading.Event()

    async def main() -> None:
        jobs = [asyncio.create_task(download(f"{loopback}/{i}.mp4", tmp_path / f"{i}.mp4", ctx=CTX))
                for i in range(8)]
        await until(lambda: len(_Handler.ports) >= 3)  # the first three reach the host (a thread each)
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert len(_Handler.ports) == 3  # the other five wait in the client
        assert _Handler.hold is not None
        _Handler.hold.set()
        await asyncio.gather(*jobs)
        await fetch.close_shared_client()

    asyncio.run(main())
    assert len(_Handler.ports) == 8 and _Handler.most == 3


def test_one_tls_context_per_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert fetch._tls() is fetch._tls()


def test_closing_waits_for_a_download_in_use(tmp_path: Path, loopback: str) -> None:
    _Handler.hold = threading.Event()

    async def main() -> None:
        job = asyncio.create_task(download(f"{loopback}/v.mp4", tmp_path / "v.mp4", ctx=CTX))
        await until(lambda: bool(_Handler.ports))
        old = fetch.shared_client()
        await fetch.close_shared_client()  # retired: the running download keeps it
        assert not old.is_closed and fetch.shared_client() is not old
        assert _Handler.hold is not None
        _Handler.hold.set()
        await job
        assert old.is_closed  # closed by the last download that used it
        await fetch.close_shared_client()

    asyncio.run(main())
    assert (tmp_path / "v.mp4").read_bytes() == BODY
