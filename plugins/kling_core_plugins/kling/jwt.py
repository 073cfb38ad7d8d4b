"""Kling API tokens: HS256 JWTs signed with the secret key (PyJWT), tolerant of clock offsets.

Kling's docs: header ``{"alg":"HS256","typ":"JWT"}``, payload ``{"iss": access_key,
"exp": now + 1800, "nbf": now - 5}``, sent as ``Authorization: Bearer <token>``.

The host checks ``nbf`` and ``exp`` against its own clock, which may be minutes away from
this machine's. The SDK's ``ExpiringTokenAuth`` absorbs that, given Kling's numbers
(:data:`TIMES`) and refusal codes (:data:`REFUSAL`):

- ``nbf`` lies 15 min in the past: a host up to that far behind accepts a new token (Kling's
  sample allows 5 s; a host 6 s behind refused every submit);
- a cached token is replaced once less than 15 min of its 30 remain, so a host up to that far
  ahead never sees it expired;
- a submit, which is never repeated, goes out with a token at most a minute old, which a host
  up to ~29 min ahead still accepts;
- a GET refused with 1003/1004 is signed again once with a fresh token.

A fresh token refused as well means the clocks differ by more than that. The error then says
so, by how much when the answer's ``Date`` header allows an estimate (and the error table's
rule for 1003/1004 says to check NTP).
"""

from __future__ import annotations

import warnings
from typing import Any

import jwt as pyjwt

from kling_core.sdk import ConfigError, TokenRefusal, TokenTimes
from kling_core_plugins.kling import wire

ALGORITHM = "HS256"
TIMES = TokenTimes(
    ttl=1800.0,  # seconds, as in Kling's sample
    skew=900.0,  # nbf this far in the past: a host clock up to 15 min behind accepts a new token
    margin=900.0,  # replace a cached token when less than this remains: hosts up to 15 min ahead
    fresh_age=60.0,  # a submit (never repeated) carries a token at most this old
)
# 1003: not yet valid (its nbf is in the host's future); 1004: expired by the host's clock.
REFUSAL = TokenRefusal(codes=wire.TOKEN_CODES, code_path="code", not_yet_valid="1003", expired="1004")


class _NoWarning(Warning):
    """Stands in for a warning class this PyJWT version does not have."""


# PyJWT >= 2.10 warns about HMAC keys under 32 bytes; the key is Kling's to choose, not the user's.
_KEY_LENGTH_WARNING: type[Warning] = getattr(pyjwt.warnings, "InsecureKeyLengthWarning", _NoWarning)


def sign(access_key: str, secret_key: str, *, now: float, times: TokenTimes = TIMES) -> str:
    """One token valid over ``times.window(now)``: from ``now - skew`` to ``now + ttl``."""
    not_before, expires = times.window(now)
    payload = {"iss": access_key, "exp": expires, "nbf": not_before}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _KEY_LENGTH_WARNING)
            return pyjwt.encode(payload, secret_key, algorithm=ALGORITHM)
    except pyjwt.InvalidKeyError as exc:
        raise ConfigError(f"KLING_SECRET_KEY cannot sign a Kling token: {exc}", key="KLING_SECRET_KEY") from None


def verify(token: str, secret_key: str) -> dict[str, Any]:
    """The claims of a token this module signed; raises ValueError if the signature is wrong.

    The time claims are returned, not checked against this machine's clock. Used by tests and
    diagnostics, not on the request path.
    """
    options: Any = {"verify_exp": False, "verify_nbf": False, "require": ["iss", "exp", "nbf"]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _KEY_LENGTH_WARNING)
            header = pyjwt.get_unverified_header(token)
            claims: dict[str, Any] = pyjwt.decode(token, secret_key, algorithms=[ALGORITHM], options=options)
    except pyjwt.InvalidSignatureError:
        raise ValueError("bad JWT signature") from None
    except pyjwt.PyJWTError as exc:
        raise ValueError(f"not a valid Kling token: {exc}") from None
    if header != {"alg": ALGORITHM, "typ": "JWT"}:
        raise ValueError("unexpected JWT header")
    return claims
