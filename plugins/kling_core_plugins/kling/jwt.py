"""Kling API tokens: HS256 JWTs signed with the secret key (PyJWT), tolerant of clock offsets.

Kling's docs: header ``{"alg":"HS256","typ":"JWT"}``, payload ``{"iss": access_key,
"exp": now + 1800, "nbf": now - 5}``, sent as ``Authorization: Bearer <token>``.

The host checks ``nbf`` and ``exp`` against its own clock, which may be minutes away from
this machine's. So:

- ``nbf`` lies :data:`NOT_BEFORE_SKEW` (15 min) in the past: a host up to that far behind
  accepts a new token (Kling's sample allows 5 s; a host 6 s behind refused every submit);
- a cached token is replaced once less than :data:`REFRESH_MARGIN` (15 min) of its 30 remain,
  so a host up to that far ahead never sees it expired;
- a submit, which is never repeated, goes out with a token at most :data:`FRESH_AGE` old,
  which a host up to ~29 min ahead still accepts;
- a GET refused with 1003/1004 is signed again once with a fresh token.

A fresh token refused as well means the clocks differ by more than that. The error then says
so, by how much when the answer's ``Date`` header allows an estimate, and to check NTP.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import warnings
import weakref
from collections.abc import Callable, Generator
from typing import Any

import attrs
import httpx
import jwt as pyjwt

from kling_core.sdk import (
    ConfigError,
    ErrorInfo,
    RefreshingAuth,
    Secret,
    field_code,
    register_secret,
    try_json,
)

ALGORITHM = "HS256"
TOKEN_TTL = 1800.0  # seconds, as in Kling's sample
NOT_BEFORE_SKEW = 900.0  # nbf this far in the past: a host clock up to 15 min behind accepts a new token
REFRESH_MARGIN = 900.0  # replace a cached token when less than this remains: hosts up to 15 min ahead
FRESH_AGE = 60.0  # a submit (never repeated) carries a token at most this old
NOT_YET_VALID = "1003"  # Kling: token not yet valid (its nbf is in the host's future)
_IDEMPOTENT = frozenset({"GET", "HEAD"})


class _NoWarning(Warning):
    """Stands in for a warning class this PyJWT version does not have."""


# PyJWT >= 2.10 warns about HMAC keys under 32 bytes; the key is Kling's to choose, not the user's.
_KEY_LENGTH_WARNING: type[Warning] = getattr(pyjwt.warnings, "InsecureKeyLengthWarning", _NoWarning)


def sign(access_key: str, secret_key: str, *, now: float, ttl: float = TOKEN_TTL,
         skew: float = NOT_BEFORE_SKEW) -> str:
    """One token valid from ``now - skew`` to ``now + ttl`` (whole seconds, rounded inwards)."""
    payload = {"iss": access_key, "exp": int(now + ttl), "nbf": int(now - skew)}
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


@attrs.frozen
class Grant:
    """One token as handed out: its validity window and when it was minted (our clock)."""

    token: Secret
    not_before: int
    expires: int
    minted_at: float


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
        skew: float = NOT_BEFORE_SKEW,
        on_mint: Callable[[str], None] | None = None,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self.clock = clock
        self._ttl = ttl
        self._margin = margin
        self._skew = skew
        self._on_mint = on_mint
        self._grant: Grant | None = None
        self.minted = 0  # how many tokens were signed (observable in tests)

    def __repr__(self) -> str:
        return f"<TokenCache minted={self.minted}>"

    def grant(self, *, max_age: float | None = None) -> Grant:
        """The cached token, or a new one if it is near expiry, not valid yet by our clock, or
        older than ``max_age`` seconds."""
        now = self.clock()
        cached = self._grant
        if (
            cached is None
            or not (cached.not_before <= now < cached.expires - self._margin)
            or (max_age is not None and now - cached.minted_at > max_age)
        ):
            value = sign(self._access_key.reveal(), self._secret_key.reveal(), now=now, ttl=self._ttl,
                         skew=self._skew)
            cached = self._grant = Grant(Secret(value), int(now - self._skew), int(now + self._ttl), now)
            self.minted += 1
            if self._on_mint is not None:
                self._on_mint(value)  # e.g. register it for log redaction
        return cached

    def token(self, *, max_age: float | None = None) -> Secret:
        return self.grant(max_age=max_age).token

    def invalidate(self) -> None:
        """Forget the cached token (after the host said it was not valid)."""
        self._grant = None


class KlingTokenAuth(RefreshingAuth):
    """Signs each request with the cached token (a submit with one minted within
    :data:`FRESH_AGE`); a GET refused for its token (clock codes 1003/1004) is signed again once
    with a fresh one, a POST never. A fresh token refused too leaves a note on that answer
    (:meth:`explain`) naming the clock offset. Every minted token is a secret too."""

    def __init__(self, provider: str, allowed_hosts: Callable[[], frozenset[str]], tokens: TokenCache,
                 *, rejected_codes: frozenset[str]) -> None:
        super().__init__(provider, allowed_hosts)
        self.tokens = tokens
        self.rejected_codes = rejected_codes
        self._notes: weakref.WeakKeyDictionary[httpx.Response, str] = weakref.WeakKeyDictionary()

    def _grant(self, *, max_age: float | None = None) -> Grant:
        fresh = self.tokens.minted
        grant = self.tokens.grant(max_age=max_age)
        if self.tokens.minted != fresh:
            register_secret(grant.token.reveal())
        return grant

    def token(self) -> str:
        return self._grant().token.reveal()

    def invalidate(self) -> None:
        self.tokens.invalidate()

    def rejected(self, response: httpx.Response) -> bool:
        return field_code(try_json(response), "code") in self.rejected_codes

    def _sign_with(self, request: httpx.Request, *, max_age: float | None = None) -> tuple[Grant, float]:
        """Sign ``request``; the token used and when (our clock)."""
        grant = self._grant(max_age=max_age)
        request.headers[self.header] = f"{self.scheme} {grant.token.reveal()}"
        return grant, self.tokens.clock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.check_host(request)
        idempotent = request.method in _IDEMPOTENT
        grant, sent_at = self._sign_with(request, max_age=None if idempotent else FRESH_AGE)
        response = yield request
        if not self.rejected(response):
            return
        self.invalidate()  # the next request (or this retry) mints a fresh token
        if idempotent:
            grant, sent_at = self._sign_with(request)
            response = yield request
            if not self.rejected(response):
                return
            self.invalidate()  # refused again: never reuse it
        # A token minted moments ago was refused: the clocks disagree by more than we allow for.
        self._notes[response] = clock_note(
            field_code(try_json(response), "code"), grant, sent_at=sent_at,
            received_at=self.tokens.clock(), date=response.headers.get("date"), retried=idempotent,
        )

    def explain(self, info: ErrorInfo, response: httpx.Response) -> ErrorInfo:
        """``info`` with the clock note this flow left on ``response``, if any."""
        note = self._notes.get(response)
        if note is None:
            return info
        return attrs.evolve(info, message=f"{info.message}; {note}" if info.message else note)


def host_offset(date: str | None, received_at: float) -> float | None:
    """The host's clock minus ours in seconds, from the answer's ``Date`` header (±1 s), if any."""
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # "-0000": UTC, source unknown
    try:
        return when.timestamp() - received_at
    except (OverflowError, OSError, ValueError):
        return None


def span(seconds: float) -> str:
    """A rough duration: ``40 s``, ``12 min``, ``2 h``, ``3.5 h``, ``2 days``."""
    seconds = abs(seconds)
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}".removesuffix(".0") + " h"
    return f"{seconds / 86_400:.0f} days"


def clock_note(code: str | None, grant: Grant, *, sent_at: float, received_at: float, date: str | None,
               retried: bool) -> str:
    """Why a fresh token was refused: the host's clock differs from ours, by about how much."""
    behind = code == NOT_YET_VALID
    direction = "behind" if behind else "ahead"
    # What the refusal proves: the host's clock was past exp, or before nbf, when it checked.
    bound = sent_at - grant.not_before if behind else grant.expires - sent_at
    offset = host_offset(date, received_at)
    if offset is not None and (offset < 0) == behind and abs(offset) > bound / 2:
        size = f"about {span(offset)} {direction} (going by the Date header of its answer)"
    else:
        size = f"more than {span(bound)} {direction} (going by the token's validity window)"
    refused = "was refused as well" if retried else "was refused"
    return (f"a freshly signed token {refused}, so the host's clock and this machine's seem to differ: "
            f"the host's is {size}")
