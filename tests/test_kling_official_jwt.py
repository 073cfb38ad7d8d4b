"""Kling API tokens: signature, claims, and reuse until shortly before expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kling_core_plugins.kling import jwt

from kling_core.errors import ProtocolError
from kling_core.settings import Secret

AK = "ak-CANARY-access"
SK = "sk-CANARY-secret"


def decode(part: str) -> object:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_token_is_an_rfc7519_hs256_jwt() -> None:
    token = jwt.sign(AK, SK, now=1_700_000_000.4)
    head, body, sig = token.split(".")
    assert "=" not in token
    assert decode(head) == {"alg": "HS256", "typ": "JWT"}
    assert decode(body) == {"iss": AK, "exp": 1_700_001_800, "nbf": 1_699_999_995}
    # Recompute the signature independently of the module.
    expected = hmac.new(SK.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected


def test_verify_roundtrip_and_rejections() -> None:
    token = jwt.sign(AK, SK, now=1000.0)
    assert jwt.verify(token, SK)["iss"] == AK
    with pytest.raises(ValueError, match="signature"):
        jwt.verify(token, SK + "x")
    head, _body, sig = token.split(".")
    forged = jwt.b64url(json.dumps({"iss": "other", "exp": 1, "nbf": 0}).encode())
    with pytest.raises(ValueError, match="signature"):
        jwt.verify(f"{head}.{forged}.{sig}", SK)
    with pytest.raises(ValueError):
        jwt.verify("abc", SK)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cache_reuses_until_near_expiry() -> None:
    clock = Clock(10_000.0)
    minted: list[str] = []
    cache = jwt.TokenCache(Secret(AK), Secret(SK), clock, on_mint=minted.append)
    first = cache.token()
    assert cache.minted == 1 and minted == [first.reveal()]
    for step in (1.0, 600.0, 1400.0, 1800 - jwt.REFRESH_MARGIN - 1):
        clock.now = 10_000.0 + step
        assert cache.token() == first, step
    assert cache.minted == 1
    clock.now = 10_000.0 + 1800 - jwt.REFRESH_MARGIN
    second = cache.token()
    assert second != first and cache.minted == 2
    claims = jwt.verify(second.reveal(), SK)
    assert claims["exp"] == int(clock.now + 1800)
    # Every token handed out is valid at the moment it is handed out.
    assert claims["nbf"] <= clock.now < claims["exp"]  # type: ignore[operator]


def test_cache_remints_when_the_clock_jumps_back_or_after_invalidate() -> None:
    clock = Clock(50_000.0)
    cache = jwt.TokenCache(Secret(AK), Secret(SK), clock)
    first = cache.token()
    clock.now = 40_000.0  # clock corrected backwards: the old token is not valid yet
    assert cache.token() != first and cache.minted == 2
    cache.invalidate()
    assert cache.minted == 2
    cache.token()
    assert cache.minted == 3


def test_cache_repr_and_token_hide_secrets() -> None:
    cache = jwt.TokenCache(Secret(AK), Secret(SK), Clock(1.0))
    token = cache.token()
    for text in (repr(cache), str(cache), repr(token), str(token)):
        assert AK not in text and SK not in text and token.reveal() not in text


@settings(max_examples=50, deadline=None)
@given(
    access=st.text(min_size=1, max_size=40),
    secret=st.text(min_size=1, max_size=64),
    now=st.floats(min_value=1e9, max_value=4e9),
    steps=st.lists(st.floats(min_value=0, max_value=4000), min_size=1, max_size=8),
)
def test_every_token_handed_out_is_valid_then_and_verifies(
    access: str, secret: str, now: float, steps: list[float]
) -> None:
    clock = Clock(now)
    cache = jwt.TokenCache(Secret(access), Secret(secret), clock)
    for step in steps:
        clock.now += step
        claims = jwt.verify(cache.token().reveal(), secret)
        assert claims["iss"] == access
        # Valid now, and still valid for at least the refresh margin (minus rounding).
        assert claims["nbf"] <= clock.now  # type: ignore[operator]
        assert claims["exp"] - clock.now >= jwt.REFRESH_MARGIN - 1  # type: ignore[operator]


# --- KlingTokenAuth: the httpx.Auth that signs each request -------------------------------


def _auth(clock: Clock) -> jwt.KlingTokenAuth:
    cache = jwt.TokenCache(Secret(AK), Secret(SK), clock)
    return jwt.KlingTokenAuth("kling", lambda: frozenset({"api-singapore.klingai.com"}), cache,
                              rejected_codes=frozenset({"1003", "1004"}))


@pytest.mark.parametrize(
    ("status", "body", "rejected"),
    [
        (401, {"code": 1004, "message": "expired"}, True),
        (401, {"code": 1003, "message": "not yet valid"}, True),
        (200, {"code": 1004, "message": "expired"}, True),
        (401, {"code": 1002, "message": "invalid"}, False),
        (401, {"code": 1000}, False),
        (200, {"code": 0, "data": {}}, False),
        (401, None, False),
    ],
)
def test_token_auth_recognises_only_the_token_codes(status: int, body: object, rejected: bool) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="nope")
    assert _auth(Clock(1e9)).rejected(response) is rejected


def test_token_auth_signs_with_a_bearer_jwt_and_registers_it_as_a_secret() -> None:
    from kling_core.http.redact import scrub

    auth = _auth(Clock(1_763_700_000.0))
    request = httpx.Request("GET", "https://api-singapore.klingai.com/v1/videos/omni-video/1")
    flow = auth.sync_auth_flow(request)
    signed = next(flow)
    token = signed.headers["authorization"].removeprefix("Bearer ")
    assert jwt.verify(token, SK)["iss"] == AK
    assert token not in scrub(f"echoed {token}")


def test_token_auth_refuses_a_host_that_is_not_the_api() -> None:
    auth = _auth(Clock(1e9))
    request = httpx.Request("GET", "https://elsewhere.example.com/steal")
    with pytest.raises(ProtocolError, match="not its API host"):
        next(auth.sync_auth_flow(request))
    assert "authorization" not in request.headers
    assert auth.tokens.minted == 0
