"""Short-lived signed tokens (JWTs and the like), tolerant of a host whose clock is off from ours.

A host that checks a token's validity window (``nbf``/``exp``) against its own clock refuses
a perfectly good token when the two clocks differ. :class:`ExpiringTokenAuth` keeps that from
costing anything for offsets up to minutes, and names the offset when it is larger. A plugin
gives it data and one callable:

- ``mint(now) -> (token, not_before, expires)``: sign one token (the plugin's crypto), usually
  valid over :meth:`TokenTimes.window`;
- :class:`TokenTimes`: the token's lifetime (``ttl``), how far in the past ``not_before`` lies
  (``skew``: a host clock that far behind accepts a new token), when a cached token is replaced
  (``margin`` before it expires: a host clock that far ahead never sees it expired) and how
  old a token a request that is never repeated (a submit) may carry (``fresh_age``);
- :class:`TokenRefusal`: which codes in the answer's body mean "this token was refused", and
  which of them says "not valid yet" (the host is behind) or "expired" (the host is ahead).

A GET or HEAD refused for its token is signed again once with a fresh one; a submit never is.
A fresh token refused as well leaves a note on that answer, which
:meth:`HttpProvider.error_info <kling_core.http.base.HttpProvider.error_info>` adds to the error
through :meth:`ExpiringTokenAuth.explain`: the host's clock differs from ours, by about how much
when the answer's ``Date`` header allows an estimate, else by at least what the refused
window proves. Every minted token is registered with the log scrubber.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import httpx

from kling_core.http import fields
from kling_core.http.auth import RefreshingAuth
from kling_core.http.base import try_json
from kling_core.http.errormap import ErrorInfo
from kling_core.http.redact import register_secret
from kling_core.settings import Secret

# ``mint(now)``: a new token and its validity window (host clock seconds, as in JWT claims).
Mint = Callable[[float], tuple[str, float, float]]


def _non_negative(_instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


@attrs.frozen
class TokenTimes:
    """How long a token lives and how much clock offset it absorbs, in seconds."""

    ttl: float  # a token is valid until now + ttl
    skew: float = attrs.field(default=0.0, validator=_non_negative)  # ... and from now - skew
    margin: float = attrs.field(default=60.0, validator=_non_negative)  # replace a cached one this long before expiry
    fresh_age: float = attrs.field(default=60.0, validator=_non_negative)  # a submit's token is at most this old

    def __attrs_post_init__(self) -> None:
        if self.ttl <= self.margin:
            raise ValueError(f"ttl ({self.ttl}) must exceed margin ({self.margin}): no token would be usable")

    def window(self, now: float) -> tuple[int, int]:
        """``(not_before, expires)`` of a token minted at ``now``, whole seconds (as JWT claims)."""
        return int(now - self.skew), int(now + self.ttl)


def _codes(values: Iterable[str]) -> frozenset[str]:
    return frozenset(str(v) for v in values)


@attrs.frozen
class TokenRefusal:
    """How a host says it refused the token itself: a code in the answer's body.

    ``not_yet_valid`` and ``expired`` (both among ``codes``) say which way the host's clock
    is off; a host with one code for both leaves them ``None`` and the note guesses from the
    ``Date`` header.
    """

    codes: frozenset[str] = attrs.field(converter=_codes)
    code_path: str = "code"  # where the code sits in the body (a fields path)
    not_yet_valid: str | None = attrs.field(default=None, converter=attrs.converters.optional(str))
    expired: str | None = attrs.field(default=None, converter=attrs.converters.optional(str))

    def __attrs_post_init__(self) -> None:
        stray = {c for c in (self.not_yet_valid, self.expired) if c is not None} - self.codes
        if stray:
            raise ValueError(f"{sorted(stray)} must be among the refusal codes {sorted(self.codes)}")

    def code(self, response: httpx.Response) -> str | None:
        return fields.code(try_json(response), self.code_path)

    def refused(self, response: httpx.Response) -> bool:
        return self.code(response) in self.codes


@attrs.frozen
class TokenGrant:
    """One token as handed out: its validity window and when it was minted (our clock)."""

    token: Secret
    not_before: float
    expires: float
    minted_at: float


class TokenCache:
    """Hands out a token, minting a new one only when the cached one is near expiry.

    ``clock`` is the provider context's clock, so tests drive expiry without waiting. A clock
    that jumps backwards past the token's ``not_before`` also triggers a new token.
    """

    def __init__(
        self, mint: Mint, clock: Callable[[], float], *, margin: float = 60.0,
        on_mint: Callable[[str], None] | None = None,
    ) -> None:
        self._mint = mint
        self.clock = clock
        self._margin = margin
        self._on_mint = on_mint
        self._grant: TokenGrant | None = None
        self.minted = 0  # how many tokens were signed (observable in tests)

    def __repr__(self) -> str:
        return f"<TokenCache minted={self.minted}>"

    def grant(self, *, max_age: float | None = None) -> TokenGrant:
        """The cached token, or a new one if it is near expiry, not valid yet by our clock, or
        older than ``max_age`` seconds."""
        now = self.clock()
        cached = self._grant
        if (
            cached is None
            or not (cached.not_before <= now < cached.expires - self._margin)
            or (max_age is not None and now - cached.minted_at > max_age)
        ):
            value, not_before, expires = self._mint(now)
            cached = self._grant = TokenGrant(Secret(value), not_before, expires, now)
            self.minted += 1
            if self._on_mint is not None:
                self._on_mint(value)  # e.g. register it for log redaction
        return cached

    def token(self, *, max_age: float | None = None) -> Secret:
        return self.grant(max_age=max_age).token

    def invalidate(self) -> None:
        """Forget the cached token (after the host said it was not valid)."""
        self._grant = None


@attrs.frozen
class _Signed:
    grant: TokenGrant
    sent_at: float  # our clock


class ExpiringTokenAuth(RefreshingAuth):
    """Signs each request with the cached token (a submit with one minted within
    ``times.fresh_age``); see the module docstring. ``tokens`` is the :class:`TokenCache`."""

    def __init__(
        self, provider: str, allowed_hosts: Callable[[], frozenset[str]], *, mint: Mint,
        clock: Callable[[], float], times: TokenTimes, refusal: TokenRefusal,
        header: str = "authorization", scheme: str = "Bearer",
    ) -> None:
        super().__init__(provider, allowed_hosts)
        self.tokens = TokenCache(mint, clock, margin=times.margin, on_mint=register_secret)
        self.times = times
        self.refusal = refusal
        self.header = header
        self.scheme = scheme
        self._notes: weakref.WeakKeyDictionary[httpx.Response, str] = weakref.WeakKeyDictionary()

    def token(self) -> str:
        return self.tokens.token().reveal()

    def invalidate(self) -> None:
        self.tokens.invalidate()

    def rejected(self, response: httpx.Response) -> bool:
        return self.refusal.refused(response)

    def sign(self, request: httpx.Request, *, fresh: bool) -> _Signed:
        grant = self.tokens.grant(max_age=self.times.fresh_age if fresh else None)
        self.put(request, grant.token.reveal())
        return _Signed(grant, self.tokens.clock())

    def refused(self, response: httpx.Response, signed: _Signed, *, retried: bool) -> None:
        # A token minted moments ago was refused: the clocks disagree by more than we allow for.
        self._notes[response] = clock_note(
            self.refusal.code(response), signed.grant, self.refusal, sent_at=signed.sent_at,
            received_at=self.tokens.clock(), date=response.headers.get("date"), retried=retried,
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


_WAY = {True: "behind", False: "ahead"}


def clock_note(code: str | None, grant: TokenGrant, refusal: TokenRefusal, *, sent_at: float,
               received_at: float, date: str | None, retried: bool) -> str:
    """Why a fresh token was refused: the host's clock differs from ours, by about how much."""
    behind = {refusal.not_yet_valid: True, refusal.expired: False}.get(code) if code is not None else None
    # What the refusal proves: the host's clock was before nbf (behind), or past exp (ahead).
    bound = {True: sent_at - grant.not_before, False: grant.expires - sent_at}
    offset = host_offset(date, received_at)
    if offset is not None and behind in (None, offset < 0) and abs(offset) > bound[offset < 0] / 2:
        size = f"about {span(offset)} {_WAY[offset < 0]} (going by the Date header of its answer)"
    elif behind is not None:
        size = f"more than {span(bound[behind])} {_WAY[behind]} (going by the token's validity window)"
    else:
        size = (f"more than {span(bound[True])} behind or {span(bound[False])} ahead "
                f"(going by the token's validity window)")
    refused = "was refused as well" if retried else "was refused"
    return (f"a freshly signed token {refused}, so the host's clock and this machine's seem to differ: "
            f"the host's is {size}")
