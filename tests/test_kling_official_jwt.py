"""Kling API tokens: signature, claims (through PyJWT), and reuse until shortly before expiry.

The cache and the signing flow are the SDK's (``TokenCache``, ``ExpiringTokenAuth``, tested on
their own in test_expiring_token_auth.py); here they run with Kling's signer and numbers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kling_core_plugins.kling import KlingProvider, jwt

from kling_core.errors import ConfigError, ProtocolError
from kling_core.http.tokens import ExpiringTokenAuth, TokenCache
from kling_core.provider import ProviderContext

AK = "ak-CANARY-access"
SK = "sk-CANARY-secret"


def decode(part: str) -> object:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_token_is_an_rfc7519_hs256_jwt() -> None:
    token = jwt.sign(AK, SK, now=1_700_000_000.4)
    head, body, sig = token.split(".")
    assert "=" not in token
    assert decode(head) == {"alg": "HS256", "typ": "JWT"}
    # nbf 15 min back: a host clock that far behind still accepts a fresh token.
    assert decode(body) == {"iss": AK, "exp": 1_700_001_800, "nbf": 1_699_999_100}
    # Recompute the signature independently of the module.
    expected = hmac.new(SK.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected


def test_verify_roundtrip_and_rejections() -> None:
    token = jwt.sign(AK, SK, now=1000.0)
    assert jwt.verify(token, SK)["iss"] == AK
    with pytest.raises(ValueError, match="signature"):
        jwt.verify(token, SK + "x")
    head, _body, sig = token.split(".")
    forged = b64url(json.dumps({"iss": "other", "exp": 1, "nbf": 0}).encode())
    with pytest.raises(ValueError, match="signature"):
        jwt.verify(f"{head}.{forged}.{sig}", SK)
    with pytest.raises(ValueError):
        jwt.verify("abc", SK)
    # Another algorithm, even with the right key, is not a Kling token.
    other = pyjwt.encode({"iss": AK, "exp": 2, "nbf": 1}, SK * 4, algorithm="HS512")
    with pytest.raises(ValueError, match="not a valid Kling token"):
        jwt.verify(other, SK * 4)
    # A token without the time claims is refused too.
    bare = pyjwt.encode({"iss": AK}, SK * 4, algorithm="HS256")
    with pytest.raises(ValueError, match="exp"):
        jwt.verify(bare, SK * 4)


def test_the_signature_is_checked_by_an_independent_pyjwt_decode() -> None:
    token = jwt.sign(AK, SK, now=1_700_000_000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT >= 2.10 warns about a key this short
        claims = pyjwt.decode(token, SK, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {"iss": AK, "exp": 1_700_001_800, "nbf": 1_699_999_100}


def test_short_secret_keys_sign_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = jwt.sign(AK, "short", now=1e9)
        assert jwt.verify(token, "short")["iss"] == AK


@pytest.mark.parametrize("secret", ["-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----",
                                    "ssh-rsa AAAAB3NzaC1yc2E"])
def test_a_secret_key_pyjwt_refuses_is_a_config_error_naming_the_variable(secret: str) -> None:
    with pytest.raises(ConfigError, match="KLING_SECRET_KEY cannot sign") as exc:
        jwt.sign(AK, secret, now=1e9)
    assert secret not in str(exc.value)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def kling_cache(clock: Clock, access: str = AK, secret: str = SK, **kwargs: Any) -> TokenCache:
    """The SDK's token cache minting Kling tokens, as ``KlingProvider.make_auth`` sets it up."""
    def mint(now: float) -> tuple[str, int, int]:
        return (jwt.sign(access, secret, now=now), *jwt.TIMES.window(now))

    return TokenCache(mint, clock, margin=jwt.TIMES.margin, **kwargs)


def test_cache_reuses_until_near_expiry() -> None:
    clock = Clock(10_000.0)
    minted: list[str] = []
    cache = kling_cache(clock, on_mint=minted.append)
    first = cache.token()
    assert cache.minted == 1 and minted == [first.reveal()]
    for step in (1.0, 600.0, 1800 - jwt.TIMES.margin - 1):
        clock.now = 10_000.0 + step
        assert cache.token() == first, step
    assert cache.minted == 1
    clock.now = 10_000.0 + 1800 - jwt.TIMES.margin
    second = cache.token()
    assert second != first and cache.minted == 2
    claims = jwt.verify(second.reveal(), SK)
    assert claims["exp"] == int(clock.now + 1800)
    # Every token handed out is valid at the moment it is handed out.
    assert claims["nbf"] <= clock.now < claims["exp"]  # type: ignore[operator]


def test_cache_remints_when_the_clock_jumps_back_or_after_invalidate() -> None:
    clock = Clock(50_000.0)
    cache = kling_cache(clock)
    first = cache.token()
    clock.now = 40_000.0  # clock corrected backwards: the old token is not valid yet
    assert cache.token() != first and cache.minted == 2
    cache.invalidate()
    assert cache.minted == 2
    cache.token()
    assert cache.minted == 3


def test_cache_repr_and_token_hide_secrets() -> None:
    cache = kling_cache(Clock(1.0))
    token = cache.token()
    for text in (repr(cache), str(cache), repr(token), str(token)):
        assert AK not in text and SK not in text and token.reveal() not in text


_KEY_CHARS = st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters='"{}')


@settings(max_examples=50, deadline=None)
@given(
    access=st.text(min_size=1, max_size=40),
    # Kling's keys are alphanumeric; any text PyJWT takes as an HMAC secret (not PEM/SSH/JWK).
    secret=st.text(_KEY_CHARS, min_size=1, max_size=64).filter(lambda s: not s.startswith(("-", "ssh-"))),
    now=st.floats(min_value=1e9, max_value=4e9),
    steps=st.lists(st.floats(min_value=0, max_value=4000), min_size=1, max_size=8),
)
def test_every_token_handed_out_is_valid_then_and_verifies(
    access: str, secret: str, now: float, steps: list[float]
) -> None:
    clock = Clock(now)
    cache = kling_cache(clock, access, secret)
    for step in steps:
        clock.now += step
        claims = jwt.verify(cache.token().reveal(), secret)
        assert claims["iss"] == access
        # Valid now, and still valid for at least the refresh margin (minus rounding).
        assert claims["nbf"] <= clock.now  # type: ignore[operator]
        assert claims["exp"] - clock.now >= jwt.TIMES.margin - 1  # type: ignore[operator]


# --- KlingProvider.make_auth: the httpx.Auth that signs each request -------------------------


def _auth(clock: Clock) -> ExpiringTokenAuth:
    ctx = ProviderContext(name="kling", environ={"KLING_ACCESS_KEY": AK, "KLING_SECRET_KEY": SK}, clock=clock)
    auth = KlingProvider(ctx).auth
    assert isinstance(auth, ExpiringTokenAuth)
    return auth


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


def test_a_submit_gets_a_token_at_most_a_minute_old_a_get_reuses_the_cached_one() -> None:
    clock = Clock(1_763_700_000.0)
    auth = _auth(clock)
    get = httpx.Request("GET", "https://api-singapore.klingai.com/v1/videos/omni-video/1")
    post = httpx.Request("POST", "https://api-singapore.klingai.com/v1/videos/omni-video", json={})

    def signed(request: httpx.Request) -> str:
        flow = auth.sync_auth_flow(request)
        token = next(flow).headers["authorization"]
        flow.close()
        return token

    first = signed(get)
    clock.now += jwt.TIMES.fresh_age  # still young enough for a submit
    assert signed(post) == first and auth.tokens.minted == 1
    clock.now += 1.0
    second = signed(post)
    assert second != first and auth.tokens.minted == 2
    clock.now += 600.0  # a GET keeps using the cached token until the refresh margin
    assert signed(get) == second and auth.tokens.minted == 2


def test_the_clock_note_is_kept_only_for_the_answer_it_explains() -> None:
    from kling_core.sdk import ErrorInfo

    clock = Clock(1_763_700_000.0)
    auth = _auth(clock)
    request = httpx.Request("GET", "https://api-singapore.klingai.com/v1/videos/omni-video/1")
    flow = auth.sync_auth_flow(request)
    next(flow)
    refused = httpx.Response(401, json={"code": 1004, "message": "expired"})
    flow.send(refused)  # the retry
    final = httpx.Response(401, json={"code": 1004, "message": "expired"}, request=request)
    with pytest.raises(StopIteration):
        flow.send(final)
    info = ErrorInfo(message="expired", code="1004")
    assert auth.explain(info, refused) is info, "the first refusal was retried, not explained"
    explained = auth.explain(info, final).message
    assert explained.startswith("expired; a freshly signed token was refused as well")
    assert "more than 30 min ahead (going by the token's validity window)" in explained
