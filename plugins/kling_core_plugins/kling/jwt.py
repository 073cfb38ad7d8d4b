"""Kling API tokens: HS256 JWTs signed with the secret key, using only the standard library.

Kling's docs: header ``{"alg":"HS256","typ":"JWT"}``, payload ``{"iss": access_key,
"exp": now + 1800, "nbf": now - 5}``, sent as ``Authorization: Bearer <token>``. A token is
reused until shortly before it expires, so a poll loop does not sign one per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import httpx

from kling_core.sdk import RefreshingAuth, Secret, field_code, register_secret, try_json

TOKEN_TTL = 1800.0  # seconds, as in Kling's sample
NOT_BEFORE_SKEW = 5.0  # nbf a little in the past: tolerates a host clock slightly behind ours
REFRESH_MARGIN = 300.0  # mint a new token this long before the old one expires

_HEADER = {"alg": "HS256", "typ": "JWT"}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def sign(access_key: str, secret_key: str, *, now: float, ttl: float = TOKEN_TTL) -> str:
    """One token valid from ``now - 5 s`` to ``now + ttl``."""
    payload = {"iss": access_key, "exp": int(now + ttl), "nbf": int(now - NOT_BEFORE_SKEW)}
    signing_input = f"{_segment(_HEADER)}.{_segment(payload)}"
    mac = hmac.new(secret_key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{b64url(mac.digest())}"


def verify(token: str, secret_key: str) -> dict[str, object]:
    """The claims of a token this module signed; raises ValueError if the signature is wrong.

    Used by tests and by ``kling`` diagnostics, not on the request path.
    """
    try:
        head, body, sig = token.split(".")
    except ValueError:
        raise ValueError("not a JWT: expected three dot-separated parts") from None
    expected = hmac.new(secret_key.encode("utf-8"), f"{head}.{body}".encode("ascii"), hashlib.sha256)
    if not hmac.compare_digest(b64url(expected.digest()), sig):
        raise ValueError("bad JWT signature")
    if json.loads(b64url_decode(head)) != _HEADER:
        raise ValueError("unexpected JWT header")
    claims = json.loads(b64url_decode(body))
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not an object")
    return claims


class TokenCache:
    """Hands out a token, minting a new one only when the cached one is near expiry.

    ``clock`` is the provider context's clock, so tests drive expiry without waiting. A clock
    that jumps backwards past the token's ``nbf`` also triggers a new token.
    """

    def __init__(
        self,
        access_key: Secret,
        secret_key: Secret,
        clock: Callable[[], float],
        *,
        ttl: float = TOKEN_TTL,
        margin: float = REFRESH_MARGIN,
        on_mint: Callable[[str], None] | None = None,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._ttl = ttl
        self._margin = margin
        self._on_mint = on_mint
        self._token: Secret | None = None
        self._valid_from = 0.0
        self._refresh_at = 0.0
        self.minted = 0  # how many tokens were signed (observable in tests)

    def __repr__(self) -> str:
        return f"<TokenCache minted={self.minted}>"

    def token(self) -> Secret:
        now = self._clock()
        if self._token is None or not (self._valid_from <= now < self._refresh_at):
            value = sign(self._access_key.reveal(), self._secret_key.reveal(), now=now, ttl=self._ttl)
            self._token = Secret(value)
            self._valid_from = int(now - NOT_BEFORE_SKEW)
            self._refresh_at = int(now + self._ttl) - self._margin
            self.minted += 1
            if self._on_mint is not None:
                self._on_mint(value)  # e.g. register it for log redaction
        return self._token

    def invalidate(self) -> None:
        """Forget the cached token (after the host said it was not valid)."""
        self._token = None


class KlingTokenAuth(RefreshingAuth):
    """Signs each request with the cached token; a GET refused for its token (clock codes
    1003/1004) is signed again once with a fresh one. Every minted token is a secret too."""

    def __init__(self, provider: str, allowed_hosts: Callable[[], frozenset[str]], tokens: TokenCache,
                 *, rejected_codes: frozenset[str]) -> None:
        super().__init__(provider, allowed_hosts)
        self.tokens = tokens
        self.rejected_codes = rejected_codes

    def token(self) -> str:
        fresh = self.tokens.minted
        value = self.tokens.token().reveal()
        if self.tokens.minted != fresh:
            register_secret(value)
        return value

    def invalidate(self) -> None:
        self.tokens.invalidate()

    def rejected(self, response: httpx.Response) -> bool:
        return field_code(try_json(response), "code") in self.rejected_codes
