"""Signature schemes of host callbacks, as data plus one verifier per kind of key.

A scheme reads its headers into :class:`Signed` (the replay key, the timestamp, the exact
bytes that were signed and the signatures offered); a verifier checks them with a
well-kept library: ``cryptography``'s Ed25519 or the standard library's HMAC, compared in
constant time. Neither parses the body: only the raw bytes are signed and checked.

- ``fal-ed25519`` (providers.md §1.7): ``X-Fal-Webhook-Request-Id``, ``-User-Id``,
  ``-Timestamp`` and ``-Signature`` (hex); the message is
  ``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(body)}"``; any key of fal's JWKS may
  verify it.
- ``standard-webhooks`` (Replicate): ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature``, a space-separated list of ``v1,<base64 HMAC-SHA256>`` over
  ``"{id}.{timestamp}.{body}"``; the key is the base64 part of a ``whsec_`` secret.
- ``wavespeed-v3``: the same headers and message, ``v3,<hex HMAC-SHA256>``, keyed by the
  secret's text after ``whsec_`` as is (plugins/kling_core_plugins/wavespeed/wire.py).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping

import attrs

from kling_core.webhooks.errors import WebhookRefused

MAX_HEADER = 1024  # a longer id, timestamp or signature list is not one a host sends


@attrs.frozen
class Signed:
    """What a signed delivery claims, read from its headers (not verified yet)."""

    delivery_id: str  # the replay key: a delivery seen before is refused
    timestamp: int  # unix seconds
    message: bytes  # the exact bytes the host signed
    signatures: tuple[bytes, ...]
    job_id: str | None = None  # a signed header naming the job (fal's request id)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookRefused(401, f"the {name} header is missing")
    if len(value) > MAX_HEADER:
        raise WebhookRefused(400, f"the {name} header is too long")
    return value.strip()


def _timestamp(text: str, name: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise WebhookRefused(401, f"the {name} header is not a unix time in seconds")
    return int(text)


def read_fal(headers: Mapping[str, str], body: bytes) -> Signed:
    request_id = _header(headers, "x-fal-webhook-request-id")
    user_id = _header(headers, "x-fal-webhook-user-id")
    stamp = _header(headers, "x-fal-webhook-timestamp")
    timestamp = _timestamp(stamp, "x-fal-webhook-timestamp")
    signature = _header(headers, "x-fal-webhook-signature")
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        raise WebhookRefused(401, "the x-fal-webhook-signature header is not hex") from None
    message = f"{request_id}\n{user_id}\n{stamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    # The signature covers the id, the time and the body: one delivery, one signature.
    return Signed(delivery_id=hashlib.sha256(raw).hexdigest(), timestamp=timestamp, message=message,
                  signatures=(raw,), job_id=request_id)


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def read_webhook_headers(headers: Mapping[str, str], body: bytes, *, version: str = "v1",
                         decode: Callable[[str], bytes] = _b64) -> Signed:
    """``webhook-id``/``-timestamp``/``-signature`` (a space-separated ``{version},<signature>`` list)."""
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    timestamp = _timestamp(stamp, "webhook-timestamp")
    offered = _header(headers, "webhook-signature")
    if "." in msg_id:
        raise WebhookRefused(401, "the webhook-id header contains '.'")
    signatures = []
    for entry in offered.split():
        tag, _, value = entry.partition(",")
        if tag != version:  # other versions (v1a: asymmetric) are not this scheme's to check
            continue
        try:
            signatures.append(decode(value))
        except (binascii.Error, ValueError):
            continue
    if not signatures:
        raise WebhookRefused(401, f"the webhook-signature header holds no {version} signature")
    # The id stays the same when the host retries a delivery: it is the idempotency key.
    return Signed(delivery_id=msg_id, timestamp=timestamp, message=f"{msg_id}.{stamp}.".encode() + body,
                  signatures=tuple(signatures))


def check_window(signed: Signed, now: float, tolerance: float) -> None:
    """Refuse a delivery signed more than ``tolerance`` seconds before or after ``now``."""
    if abs(now - signed.timestamp) > tolerance:
        raise WebhookRefused(401, f"the delivery's timestamp is more than {tolerance:g} s from this clock "
                                  "(stale, replayed or a clock far off)")


def ed25519_verifies(keys: Iterable[bytes], signed: Signed) -> bool:
    """Does any of the raw 32-byte Ed25519 public ``keys`` verify any offered signature?"""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    for raw in keys:
        key = Ed25519PublicKey.from_public_bytes(raw)
        for signature in signed.signatures:
            try:
                key.verify(signature, signed.message)
            except InvalidSignature:
                continue
            return True
    return False


def hmac_verifies(key: bytes, signed: Signed) -> bool:
    """Does any offered signature equal HMAC-SHA256(key, message)? (constant-time compare)"""
    expected = hmac.new(key, signed.message, hashlib.sha256).digest()
    return any(hmac.compare_digest(expected, offered) for offered in signed.signatures)


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after ``whsec_``.

    Raises ValueError without echoing the secret.
    """
    text = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a whsec_ secret (base64 after the prefix)") from None
    if not key:
        raise ValueError("an empty secret")
    return key


def raw_key(secret: str) -> bytes:
    """The HMAC key of a WaveSpeed secret: the text after ``whsec_``, as is."""
    text = secret.strip().removeprefix("whsec_")
    if not text:
        raise ValueError("an empty secret")
    return text.encode()


@attrs.frozen
class Scheme:
    """A signature scheme: how to read its headers and which key verifies it.

    ``key``: "jwks" (public keys fetched from a key set) or "secret" (a shared secret from
    ``[webhooks.secrets]``, turned into the HMAC key by ``secret_key``).
    """

    name: str
    read: Callable[[Mapping[str, str], bytes], Signed]
    key: str
    secret_key: Callable[[str], bytes] = standard_key


SCHEMES: Mapping[str, Scheme] = {
    "fal-ed25519": Scheme("fal-ed25519", read_fal, "jwks"),
    "standard-webhooks": Scheme("standard-webhooks", read_webhook_headers, "secret", standard_key),
    # WaveSpeed: Standard Webhooks' headers and message, "v3,<hex>" signatures, the secret as is.
    "wavespeed-v3": Scheme("wavespeed-v3", functools.partial(read_webhook_headers, version="v3", decode=bytes.fromhex),
                           "secret", raw_key),
}
