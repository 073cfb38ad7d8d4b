"""IPv6 ranges that are not the public internet, or that carry an IPv4 address inside, are
refused by the private-address guard whether written as a literal or resolved from a name;
public IPv6 addresses still pass. No test reaches the network (MockTransport, fake resolver).
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import httpx
import pytest
from test_guarded_fetch import BODY

from kling_core.errors import UnsafeMediaError
from kling_core.media.fetch import fetch
from kling_core.media.netguard import IPAddress, Resolver, address_problem
from kling_core.settings import MediaSettings

SPECIAL = {
    "64:ff9b:1::a00:7": "64:ff9b:1::/48",  # RFC 8215 local-use NAT64 -> 10.0.0.7
    "::7f00:1": "::/96",  # IPv4-compatible ::127.0.0.1 (deprecated)
    "::ffff:0:7f00:1": "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765)
    "fec0::1": "fec0::/10",  # site-local (deprecated, private in practice)
    "2002:7f00:1::1": "6to4",  # 6to4 carrying 127.0.0.1
    "2002:a9fe:a9fe::1": "6to4",  # 6to4 carrying 169.254.169.254 (cloud metadata)
    "2002:a00:7::1": "6to4",  # 6to4 carrying 10.0.0.7
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "Teredo client",  # Teredo client 10.0.0.1
}
PUBLIC = ["2606:4700::1111", "2a00:1450:4001:80b::200e", "2002:808:808::1"]  # the last: 6to4 of 8.8.8.8


def _resolver(addr: str) -> Resolver:
    def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(addr)]

    return resolve


def _get(url: str, tmp: Path, resolve: Resolver | None = None, sent: list[httpx.Request] | None = None) -> list[httpx.Request]:
    """Fetch ``url`` into ``tmp``; the requests that reached the transport (also in ``sent``)."""
    sent = [] if sent is None else sent

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=BODY)

    asyncio.run(fetch(url, tmp / "v.mp4", settings=MediaSettings(), field="video",
                      transport=httpx.MockTransport(answer), resolve=resolve))
    return sent


@pytest.mark.parametrize("addr", list(SPECIAL))
def test_special_ipv6_addresses_have_a_problem_naming_why(addr: str) -> None:
    problem = address_problem(ipaddress.ip_address(addr))
    assert problem is not None and SPECIAL[addr] in problem


@pytest.mark.parametrize("addr", list(SPECIAL))
def test_a_special_ipv6_literal_is_refused_before_any_request(addr: str, tmp_path: Path) -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(UnsafeMediaError, match=r"media\.allow_private_urls"):
        _get(f"https://[{addr}]/v.mp4", tmp_path, sent=sent)
    assert sent == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("addr", list(SPECIAL))
def test_a_name_resolving_to_a_special_ipv6_address_is_refused(addr: str, tmp_path: Path) -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(UnsafeMediaError, match="it resolves to"):
        _get("https://cdn.example/v.mp4", tmp_path, _resolver(addr), sent)
    assert sent == []


@pytest.mark.parametrize("addr", PUBLIC)
def test_a_public_ipv6_address_is_still_fetched_when_resolved(addr: str, tmp_path: Path) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is None
    sent = _get("https://cdn.example/v.mp4", tmp_path, _resolver(addr))
    assert [(r.url.host, r.url.path) for r in sent] == [(addr, "/v.mp4")]
    assert sent[0].headers["host"] == "cdn.example"
    assert (tmp_path / "v.mp4").read_bytes() == BODY


def test_allow_private_urls_still_lets_a_special_address_through(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=BODY)

    asyncio.run(fetch("https://[fec0::1]/v.mp4", tmp_path / "v.mp4", settings=MediaSettings(allow_private_urls=True),
                      field="video", transport=httpx.MockTransport(answer)))
    assert len(sent) == 1
