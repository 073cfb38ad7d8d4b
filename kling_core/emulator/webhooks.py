"""Webhook delivery, and fal's Ed25519 webhook signatures with the key set the emulator serves.

fal signs ``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(body)}"`` with Ed25519 and
sends it hex-encoded in ``X-Fal-Webhook-Signature`` beside ``X-Fal-Webhook-Request-Id``,
``X-Fal-Webhook-User-Id`` and ``X-Fal-Webhook-Timestamp``; receivers verify against any key
of the JWKS (providers.md §1.7). The emulator makes its own key pair (kept in the state
folder) and serves the public half as a JWKS.

Webhooks go to loopback URLs only; any other URL is logged and not contacted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from kling_core.emulator.media import is_loopback_url
from kling_core.files import write_bytes_atomic


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Ed25519Signer:
    def __init__(self, key_file: Path | None = None) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key: Ed25519PrivateKey | None = None
        if key_file is not None and key_file.is_file():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            key = loaded if isinstance(loaded, Ed25519PrivateKey) else None
        if key is None:
            key = Ed25519PrivateKey.generate()
            if key_file is not None:
                key_file.parent.mkdir(parents=True, exist_ok=True)
                pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
                write_bytes_atomic(key_file, pem, perms=0o600)
        self._key = key
        self.public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = hashlib.sha256(self.public_raw).hexdigest()[:16]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(self.public_raw), "kid": self.kid,
                          "use": "sig", "alg": "EdDSA"}]}

    def fal_headers(self, request_id: str, user_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
        timestamp = str(int(now if now is not None else time.time()))
        message = f"{request_id}\n{user_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
        return {
            "x-fal-webhook-request-id": request_id,
            "x-fal-webhook-user-id": user_id,
            "x-fal-webhook-timestamp": timestamp,
            "x-fal-webhook-signature": self._key.sign(message).hex(),
        }


async def deliver(url: str, body: bytes, headers: Mapping[str, str], *, attempts: int, backoff: float,
                  log: Callable[[str], None], verify: bool | str = False) -> bool:
    """POST ``body`` to a loopback ``url``, retrying on errors and non-2xx; True once delivered."""
    if not is_loopback_url(url):
        log(f"webhook to {httpx.URL(url).host or url!r} not sent: the emulator only calls loopback URLs")
        return False
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            async with httpx.AsyncClient(timeout=10.0, trust_env=False, verify=verify, follow_redirects=False) as c:
                response = await c.post(url, content=body, headers={"content-type": "application/json", **headers})
            if 200 <= response.status_code < 300:
                log(f"webhook delivered to {url} (HTTP {response.status_code}, attempt {attempt})")
                return True
            why = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            why = type(exc).__name__
        if attempt < attempts:
            log(f"webhook to {url} failed ({why}), attempt {attempt} of {attempts}; retrying in {delay:g} s")
            await asyncio.sleep(delay)
            delay *= 2
        else:
            log(f"webhook to {url} failed ({why}) after {attempts} attempts; giving up")
    return False
