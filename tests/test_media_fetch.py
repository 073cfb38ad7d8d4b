"""URL inputs: downloads from a loopback server only when allowed; private addresses refused."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from pathlib import Path

import pytest
from media_fixtures import LoopbackServer, loopback

from kling_core.errors import UnsafeMediaError
from kling_core.media import download, local_media, netguard
from kling_core.media.netguard import address_problem, checked_address
from kling_core.settings import MediaSettings

__all__ = ["loopback"]

ALLOW = MediaSettings(allow_private_urls=True)
DENY = MediaSettings()


@pytest.mark.parametrize(
    "addr",
    ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "198.18.0.1", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "fc00::1", "fd12::3", "fe80::1", "::"],
)
def test_private_and_special_addresses_are_refused(addr: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is not None


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(addr: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/x.mp4", "http://2130706433/x.mp4", "http://0x7f.1/x.mp4", "http://[::1]/x.mp4",
     "http://[::ffff:127.0.0.1]/x.mp4", "http://169.254.169.254/latest/meta-data/", "https://100.64.0.1/a.png",
     "http://[fc00::1]/a.png", "http://localhost/x.mp4"],
)
def test_urls_to_private_hosts_are_refused(url: str) -> None:
    with pytest.raises(UnsafeMediaError) as err:
        checked_address(url, field="video", allow_private=False)
    assert err.value.field == "video"


def test_a_name_resolving_privately_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {"cdn.example": [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")]}
    monkeypatch.setattr(netguard, "resolve", lambda host, port: fake[host])
    # Every resolved address is checked, not just the first.
    with pytest.raises(UnsafeMediaError, match=r"10\.0\.0\.5"):
        checked_address("https://cdn.example/v.mp4", field="images[0]", allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x.mp4", "http://user:pw@example.com/x.mp4", "http:///x"])
def test_other_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(UnsafeMediaError):
        checked_address(url, field="video", allow_private=True)


def test_loopback_download_when_allowed(loopback: LoopbackServer, tmp_path: Path) -> None:
    body = os.urandom(200_000)
    (loopback.root / "clip.mp4").write_bytes(body)
    path = asyncio.run(download(loopback.url("clip.mp4?sig=abc"), tmp_path / "dl", field="video", settings=ALLOW))
    assert path.read_bytes() == body
    assert path.suffix == ".mp4"
    assert os.listdir(tmp_path / "dl") == [path.name]
    assert loopback.hits == ["/clip.mp4?sig=abc"]


def test_loopback_refused_without_the_allowance_and_never_contacted(loopback: LoopbackServer, tmp_path: Path) -> None:
    (loopback.root / "clip.mp4").write_bytes(b"x" * 100)
    with pytest.raises(UnsafeMediaError, match=r"^video: refusing to fetch 127\.0\.0\.1"):
        asyncio.run(local_media(loopback.url("clip.mp4"), field="video", settings=DENY, download_dir=tmp_path / "dl"))
    assert loopback.hits == []
    assert not (tmp_path / "dl").exists()


def test_every_redirect_hop_is_checked(loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first hop is a "public" host (served by the loopback server); it redirects to a
    # private address, which must be refused before any connection.
    loopback_ip = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(
        netguard, "resolve", lambda host, port: [loopback_ip] if host == "cdn.example" else [ipaddress.ip_address(host)]
    )
    real = netguard.address_problem
    monkeypatch.setattr(netguard, "address_problem", lambda a: None if a == loopback_ip else real(a))
    loopback.redirects["/v.mp4"] = "http://10.1.2.3/internal"
    with pytest.raises(UnsafeMediaError, match=r"10\.1\.2\.3"):
        asyncio.run(download(f"http://cdn.example:{loopback.port}/v.mp4", tmp_path, field="video", settings=DENY))
    assert loopback.hits == ["/v.mp4"]


def test_redirects_are_capped(loopback: LoopbackServer, tmp_path: Path) -> None:
    for i in range(10):
        loopback.redirects[f"/r{i}"] = f"/r{i + 1}"
    with pytest.raises(UnsafeMediaError, match="more than 5 redirects"):
        asyncio.run(download(loopback.url("r0"), tmp_path, field="video", settings=ALLOW))
    assert len(loopback.hits) == 6


def test_redirect_within_the_cap_is_followed(loopback: LoopbackServer, tmp_path: Path) -> None:
    (loopback.root / "real.png").write_bytes(b"png-bytes")
    loopback.redirects["/short.png"] = "/real.png"
    path = asyncio.run(download(loopback.url("short.png"), tmp_path, field="images[0]", settings=ALLOW))
    assert path.read_bytes() == b"png-bytes"
    assert loopback.hits == ["/short.png", "/real.png"]


def test_size_cap_leaves_no_partial_file(loopback: LoopbackServer, tmp_path: Path) -> None:
    (loopback.root / "big.mp4").write_bytes(b"x" * 50_000)
    small = MediaSettings(allow_private_urls=True, max_download_bytes=10_000)
    with pytest.raises(UnsafeMediaError, match="over the 10000-byte limit"):
        asyncio.run(download(loopback.url("big.mp4"), tmp_path / "dl", field="video", settings=small))
    assert os.listdir(tmp_path / "dl") == []


def test_http_errors_name_the_field(loopback: LoopbackServer, tmp_path: Path) -> None:
    from kling_core.errors import ValidationError

    with pytest.raises(ValidationError, match=r"^images\[1\]: could not download .*HTTP 404$"):
        asyncio.run(download(loopback.url("missing.png?token=secret"), tmp_path, field="images[1]", settings=ALLOW))


def test_local_paths_and_file_urls(tmp_path: Path) -> None:
    f = tmp_path / "a b.mp4"
    f.write_bytes(b"1")
    assert asyncio.run(local_media(str(f), field="video", settings=DENY, download_dir=tmp_path)) == f.resolve()
    assert asyncio.run(local_media(f.as_uri(), field="video", settings=DENY, download_dir=tmp_path)) == f.resolve()
