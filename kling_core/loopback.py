"""Which bind addresses are loopback ones: the emulator and the webhook receiver bind only those
unless told otherwise (``--public``)."""

from __future__ import annotations

import ipaddress


def is_loopback_host(address: str) -> bool:
    """Is ``address`` (a bind address: ``localhost``, an IP, ``[::1]``) a loopback one?"""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False
