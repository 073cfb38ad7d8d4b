"""Which network addresses a URL fetch may reach.

Resolved once; every address must be public (``ipaddress.is_global``) and not one of the
special ranges below, unless ``allow_private`` is set (tests with a loopback server). The
caller then connects to the address that was checked, so a second DNS answer cannot swap in
a private one (rebinding). A name that does not resolve is refused, not let through.

The resolver can be injected (``resolve=``) so tests with a fake host name need no DNS; it is
never a way to skip the check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from kling_core.errors import UnsafeMediaError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> every address the name resolves to; raises UnsafeMediaError when it cannot.
Resolver = Callable[[str, int], Sequence[IPAddress]]

# Ranges refused even where a library might call them global (Python 3.11's ``is_global``
# passes the IPv4-compatible, IPv4-translated, local-use NAT64 and site-local ones).
_BLOCKED_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)


def address_problem(addr: IPAddress) -> str | None:
    """Why this address may not be fetched from, or None if it is a public address."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            inner = address_problem(addr.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else "an IPv4-mapped IPv6 address"
        # 6to4 and Teredo carry an IPv4 address a relay may deliver to: it must be public too.
        embedded = [("6to4", addr.sixtofour)] if addr.sixtofour is not None else []
        if addr.teredo is not None:
            embedded += [("Teredo server", addr.teredo[0]), ("Teredo client", addr.teredo[1])]
        for kind, inner_addr in embedded:
            inner = address_problem(inner_addr)
            if inner:
                return f"{kind} {addr} embedding {inner}"
    for net in _BLOCKED_NETS:
        if addr in net:
            return f"a private or reserved address ({addr} in {net})"
    if not addr.is_global:
        return f"not a public address ({addr})"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (a literal IP resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeMediaError(f"cannot resolve host {host!r}: {exc}") from None
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    return out


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_localhost(host: str) -> bool:
    # RFC 6761: these names are loopback whatever a (possibly fake) resolver answers.
    host = host.lower().rstrip(".")
    return host in ("localhost", "localhost.localdomain") or host.endswith(".localhost")


def checked_address(
    url: str, *, field: str, allow_private: bool, resolver: Resolver | None = None
) -> tuple[IPAddress, int]:
    """The address to connect to for ``url``, after checking every resolved address.

    ``resolver`` defaults to this module's :func:`resolve`, looked up at call time.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeMediaError(f"only http(s) URLs can be fetched, not {scheme or 'a bare path'}", field=field)
    if parts.username or parts.password:
        raise UnsafeMediaError("URLs with user:password are refused", field=field)
    try:
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # a port out of range or not a number
        raise UnsafeMediaError("URL has an invalid port", field=field) from None
    if not host:
        raise UnsafeMediaError("URL has no host", field=field)
    if not allow_private and _is_localhost(host):
        raise UnsafeMediaError(
            f"refusing to fetch {host}: a local name; set media.allow_private_urls to allow it", field=field
        )
    literal = _literal(host)
    try:
        addresses = [literal] if literal is not None else list((resolver or resolve)(host, port))
    except UnsafeMediaError as exc:
        raise UnsafeMediaError(exc.reason, field=field) from None
    if not addresses:
        raise UnsafeMediaError(f"host {host!r} resolves to no address", field=field)
    if not allow_private:
        for addr in addresses:
            why = address_problem(addr)
            if why:
                raise UnsafeMediaError(
                    f"refusing to fetch {host}: it resolves to {why}; set media.allow_private_urls to allow it",
                    field=field,
                )
    return addresses[0], port
