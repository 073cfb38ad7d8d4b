"""The SDK's short-lived token machinery on a made-up host, independent of any real provider.

"Tollgate" signs its own tokens (``tg1.<nbf>.<exp>.<hmac>``), takes them in ``x-tollgate-token``
with no scheme word, and refuses one outside its window with ``{"error": {"code":
"token_early" | "token_late"}}``, checked against its own clock, which may be off from ours.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import pytest

from kling_core.contract.models import EditRequest
from kling_core.contract.status import Running
from kling_core.errors import AuthenticationError, ProtocolError
from kling_core.http.redact import scrub
from kling_core.http.tokens import TokenGrant, clock_note
from kling_core.provider import ProviderContext
from kling_core.sdk import (
    CredentialAuth,
    CredentialSpec,
    ErrorInfo,
    ErrorRule,
    ErrorShape,
    ErrorTable,
    ExpiringTokenAuth,
    HeaderAuth,
    HostSpec,
    HttpProvider,
    ModelCapabilities,
    ProviderCapabilities,
    Routes,
    Secret,
    StatusShape,
    TokenCache,
    TokenRefusal,
    TokenTimes,
)

KEY = "tollgate-CANARY-key-0123456789"
BASE = "https://api.tollgate.test"
HOST = "api.tollgate.test"
MIN = 60.0
HOUR = 3600.0
TIMES = TokenTimes(ttl=10 * MIN, skew=2 * MIN, margin=3 * MIN, fresh_age=30.0)
REFUSAL = TokenRefusal(codes={"token_early", "token_late"}, code_path="error.code",
                       not_yet_valid="token_early", expired="token_late")
REQ = EditRequest(prompt="Make it snow", video="https://media.example.com/v.mp4", client_key="edit-0001")


def _mac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def mint_token(key: str, now: float) -> tuple[str, int, int]:
    not_before, expires = TIMES.window(now)
    body = f"tg1.{not_before}.{expires}"
    return f"{body}.{_mac(key, body)}", not_before, expires


def read_token(token: str) -> tuple[int, int]:
    body, _, mac = token.rpartition(".")
    assert hmac.compare_digest(mac, _mac(KEY, body)), "a token Tollgate did not sign"
    _, not_before, expires = body.split(".")
    return int(not_before), int(expires)


class Clock:
    def __init__(self, now: float = 1_763_700_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_auth(clock: Clock, mint: Callable[[float], tuple[str, float, float]] | None = None,
              refusal: TokenRefusal = REFUSAL) -> ExpiringTokenAuth:
    return ExpiringTokenAuth("tollgate", lambda: frozenset({HOST}), clock=clock, times=TIMES, refusal=refusal,
                             mint=mint or (lambda now: mint_token(KEY, now)), header="x-tollgate-token", scheme="")


def refusal(code: str, *, date: str | None = None, status: int = 401) -> httpx.Response:
    headers = {"date": date} if date else {}
    return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": "token refused"}})


def ok() -> httpx.Response:
    return httpx.Response(200, json={"id": "r1", "status": "working"})


# --- the data -------------------------------------------------------------------------------


def test_times_give_the_window_and_refuse_unusable_numbers() -> None:
    assert TIMES.window(1000.7) == (880, 1600)
    with pytest.raises(ValueError, match="must exceed margin"):
        TokenTimes(ttl=60, margin=60)
    with pytest.raises(ValueError, match="skew must not be negative"):
        TokenTimes(ttl=60, skew=-1, margin=0)


@pytest.mark.parametrize(
    ("response", "code", "refused"),
    [
        (refusal("token_late"), "token_late", True),
        (refusal("token_early", status=200), "token_early", True),
        (refusal("quota"), "quota", False),
        (httpx.Response(401, json={"code": "token_late"}), None, False),  # not at the code path
        (httpx.Response(401, text="<html>nope</html>"), None, False),
        (httpx.Response(401), None, False),
    ],
)
def test_a_refusal_is_told_by_the_code_at_its_path(response: httpx.Response, code: str | None, refused: bool) -> None:
    assert REFUSAL.code(response) == code
    assert REFUSAL.refused(response) is refused


def test_refusal_codes_are_strings_and_the_direction_codes_are_among_them() -> None:
    numeric = TokenRefusal(codes={1003, 1004}, not_yet_valid=1003)  # type: ignore[arg-type]
    assert numeric.codes == {"1003", "1004"} and numeric.not_yet_valid == "1003"
    assert numeric.refused(httpx.Response(401, json={"code": 1004}))
    with pytest.raises(ValueError, match="among the refusal codes"):
        TokenRefusal(codes={"a"}, expired="b")


# --- TokenCache -------------------------------------------------------------------------------


def test_the_cache_reuses_a_token_until_less_than_the_margin_remains() -> None:
    clock = Clock(10_000.0)
    calls: list[float] = []
    seen: list[str] = []

    def mint(now: float) -> tuple[str, float, float]:
        calls.append(now)
        return mint_token(KEY, now)

    cache = TokenCache(mint, clock, margin=TIMES.margin, on_mint=seen.append)
    first = cache.token()
    assert calls == [10_000.0] and seen == [first.reveal()] and cache.minted == 1
    for step in (1.0, 200.0, TIMES.ttl - TIMES.margin - 1):
        clock.now = 10_000.0 + step
        assert cache.token() == first, step
    clock.now = 10_000.0 + TIMES.ttl - TIMES.margin
    grant = cache.grant()
    assert grant.token != first and cache.minted == 2 and calls[-1] == clock.now
    assert (grant.not_before, grant.expires, grant.minted_at) == (*TIMES.window(clock.now), clock.now)


def test_the_cache_remints_for_max_age_a_clock_jump_back_or_after_invalidate() -> None:
    clock = Clock(50_000.0)
    cache = TokenCache(lambda now: mint_token(KEY, now), clock, margin=TIMES.margin)
    first = cache.token()
    clock.now += 30.0
    assert cache.token(max_age=30.0) == first and cache.minted == 1
    clock.now += 0.5
    second = cache.token(max_age=30.0)
    assert second != first and cache.minted == 2
    clock.now = 40_000.0  # corrected backwards: the cached token is not valid yet
    assert cache.token() != second and cache.minted == 3
    cache.invalidate()
    assert cache.minted == 3
    cache.token()
    assert cache.minted == 4


def test_the_cache_and_its_tokens_hide_the_token_text() -> None:
    cache = TokenCache(lambda now: mint_token(KEY, now), Clock(), margin=0)
    token = cache.token()
    for text in (repr(cache), str(cache), repr(token), str(token), repr(cache.grant())):
        assert token.reveal() not in text and KEY not in text


# --- ExpiringTokenAuth, one flow at a time ----------------------------------------------------


def _signed(auth: ExpiringTokenAuth, request: httpx.Request) -> str:
    flow = auth.sync_auth_flow(request)
    token = next(flow).headers["x-tollgate-token"]
    flow.close()
    return token


def test_the_auth_signs_in_its_header_and_registers_every_token_with_the_scrubber() -> None:
    clock = Clock()
    auth = make_auth(clock)
    flow = auth.sync_auth_flow(httpx.Request("GET", f"{BASE}/v2/renders/r1"))
    signed = next(flow)
    flow.close()
    token = signed.headers["x-tollgate-token"]
    assert token.startswith("tg1.") and read_token(token) == TIMES.window(clock.now)
    assert "authorization" not in signed.headers, "only the configured header, with no scheme word"
    clock.now += HOUR
    later = _signed(auth, httpx.Request("GET", f"{BASE}/v2/renders/r1"))
    assert later != token and auth.tokens.minted == 2
    for value in (token, later):
        assert value not in scrub(f"the host echoed {value}")


def test_the_auth_refuses_a_host_that_is_not_the_api_and_mints_nothing() -> None:
    auth = make_auth(Clock())
    request = httpx.Request("GET", "https://elsewhere.example.com/steal")
    with pytest.raises(ProtocolError, match="not its API host"):
        next(auth.sync_auth_flow(request))
    assert "x-tollgate-token" not in request.headers and auth.tokens.minted == 0


def test_a_submit_carries_a_token_at_most_fresh_age_old_a_get_the_cached_one() -> None:
    clock = Clock()
    auth = make_auth(clock)
    get = httpx.Request("GET", f"{BASE}/v2/renders/r1")
    post = httpx.Request("POST", f"{BASE}/v2/renders", json={})
    first = _signed(auth, get)
    clock.now += TIMES.fresh_age
    assert _signed(auth, post) == first and auth.tokens.minted == 1
    clock.now += 1.0
    second = _signed(auth, post)
    assert second != first and auth.tokens.minted == 2
    clock.now += 5 * MIN  # a GET keeps the cached token until the refresh margin
    assert _signed(auth, get) == second and auth.tokens.minted == 2


def test_a_get_refused_for_its_token_is_signed_again_once_and_not_explained() -> None:
    clock = Clock()
    auth = make_auth(clock)
    request = httpx.Request("GET", f"{BASE}/v2/renders/r1")
    flow = auth.sync_auth_flow(request)
    first = next(flow).headers["x-tollgate-token"]
    clock.now += 1.0
    refused = refusal("token_late")
    retry = flow.send(refused)
    assert retry.headers["x-tollgate-token"] != first and auth.tokens.minted == 2
    with pytest.raises(StopIteration):
        flow.send(ok())
    info = ErrorInfo(message="token refused", code="token_late")
    assert auth.explain(info, refused) is info


def test_a_refused_submit_is_not_repeated_its_token_is_dropped_and_the_answer_explained() -> None:
    clock = Clock()
    auth = make_auth(clock)
    flow = auth.sync_auth_flow(httpx.Request("POST", f"{BASE}/v2/renders", json={}))
    next(flow)
    answer = refusal("token_early")
    with pytest.raises(StopIteration):
        flow.send(answer)
    assert auth.tokens.minted == 1
    _signed(auth, httpx.Request("GET", f"{BASE}/v2/renders/r1"))
    assert auth.tokens.minted == 2, "the refused token is never reused"
    note = auth.explain(ErrorInfo(message="token refused"), answer).message
    assert note.startswith("token refused; a freshly signed token was refused, so the host's clock")
    assert "more than 2 min behind (going by the token's validity window)" in note
    assert auth.explain(ErrorInfo(message=""), answer).message.startswith("a freshly signed token was refused,")


def test_an_answer_other_than_a_token_refusal_is_left_alone() -> None:
    auth = make_auth(Clock())
    flow = auth.sync_auth_flow(httpx.Request("GET", f"{BASE}/v2/renders/r1"))
    next(flow)
    answer = refusal("quota", status=429)
    with pytest.raises(StopIteration):
        flow.send(answer)
    assert auth.tokens.minted == 1
    info = ErrorInfo(message="quota")
    assert auth.explain(info, answer) is info


def test_other_auth_objects_explain_nothing() -> None:
    auth: CredentialAuth = HeaderAuth("x", lambda: frozenset({HOST}), secret=Secret(KEY))
    info = ErrorInfo(message="m")
    assert auth.explain(info, httpx.Response(401)) is info


# --- the note ---------------------------------------------------------------------------------

GRANT = TokenGrant(Secret("t"), not_before=1000.0 - 2 * MIN, expires=1000.0 + 10 * MIN, minted_at=1000.0)


def _date(offset: float) -> str:
    return email.utils.formatdate(1000.0 + offset, usegmt=True)


@pytest.mark.parametrize(
    ("code", "date", "said"),
    [
        ("token_late", _date(2 * HOUR), "about 2 h ahead (going by the Date header of its answer)"),
        ("token_early", _date(-3 * HOUR), "about 3 h behind (going by the Date header of its answer)"),
        ("token_late", None, "more than 10 min ahead (going by the token's validity window)"),
        ("token_early", None, "more than 2 min behind (going by the token's validity window)"),
        # A Date header that contradicts the code, or is too close to ours, is not believed.
        ("token_late", _date(-2 * HOUR), "more than 10 min ahead (going by the token's validity window)"),
        ("token_late", _date(60.0), "more than 10 min ahead (going by the token's validity window)"),
    ],
)
def test_the_note_names_the_offset_by_the_date_header_or_the_window(code: str, date: str | None, said: str) -> None:
    note = clock_note(code, GRANT, REFUSAL, sent_at=1000.0, received_at=1000.0, date=date, retried=True)
    assert note == ("a freshly signed token was refused as well, so the host's clock and this machine's "
                    f"seem to differ: the host's is {said}")


@pytest.mark.parametrize(
    ("date", "said"),
    [
        (_date(2 * HOUR), "about 2 h ahead (going by the Date header"),
        (_date(-2 * HOUR), "about 2 h behind (going by the Date header"),
        (_date(0.0), "more than 2 min behind or 10 min ahead (going by the token's validity window)"),
        (None, "more than 2 min behind or 10 min ahead (going by the token's validity window)"),
    ],
)
def test_a_host_with_one_refusal_code_gets_its_direction_from_the_date_header(date: str | None, said: str) -> None:
    one_code = TokenRefusal(codes={"bad_token"}, code_path="error.code")
    note = clock_note("bad_token", GRANT, one_code, sent_at=1000.0, received_at=1000.0, date=date, retried=False)
    assert said in note and "a freshly signed token was refused," in note


# --- end to end: a provider that says nothing but data ----------------------------------------


class Tollgate(HttpProvider):
    name: ClassVar[str] = "tollgate"
    credentials = (CredentialSpec("key", "TOLLGATE_KEY"),)
    capabilities = ProviderCapabilities(models=(ModelCapabilities("kling-o1"),))
    default_base_url: ClassVar[str] = BASE
    spec = HostSpec(
        routes=Routes(submit="v2/renders", status="v2/renders/{job_id}"),
        status=StatusShape(states={"working": "running"}),
        errors=ErrorShape(message=("error.message",), code=("error.code",)),
    )
    error_table = ErrorTable(by_code={
        "token_early": ErrorRule(AuthenticationError, False, "token not valid yet by the host's clock"),
        "token_late": ErrorRule(AuthenticationError, False, "token expired by the host's clock"),
    })

    def submit_body(self, request: EditRequest) -> dict[str, Any]:
        return {"prompt": request.prompt}

    def make_auth(self) -> CredentialAuth:
        key = self.secrets["key"]
        return ExpiringTokenAuth(self.name, self.api_hosts, clock=self.ctx.clock, times=TIMES, refusal=REFUSAL,
                                 mint=lambda now: mint_token(key.reveal(), now), header="x-tollgate-token",
                                 scheme="")


class ClockedHost:
    """Tollgate with a clock ``offset`` seconds from ours (positive: ahead)."""

    def __init__(self, clock: Clock, offset: float, *, send_date: bool = True) -> None:
        self.clock = clock
        self.offset = offset
        self.send_date = send_date
        self.requests: list[tuple[str, str]] = []  # (method, "ok" or the refusal code)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.now += 0.2
        host_now = self.clock.now + self.offset
        not_before, expires = read_token(request.headers["x-tollgate-token"])
        headers = {"date": email.utils.formatdate(host_now, usegmt=True)} if self.send_date else {}
        code = "token_early" if host_now < not_before else "token_late" if host_now >= expires else None
        self.requests.append((request.method, code or "ok"))
        if code is None:
            return httpx.Response(200, headers=headers, json={"id": "r1", "status": "working"})
        return httpx.Response(401, headers=headers, json={"error": {"code": code, "message": "token refused"}})


def tollgate(host: ClockedHost, clock: Clock) -> Tollgate:
    async def sleep(seconds: float) -> None:
        clock.now += seconds

    ctx = ProviderContext(name="tollgate", environ={"TOLLGATE_KEY": KEY}, transport=httpx.MockTransport(host),
                          sleep=sleep, clock=clock)
    return Tollgate(ctx)


def test_the_provider_keeps_the_base_error_info() -> None:
    assert Tollgate.error_info is HttpProvider.error_info


@pytest.mark.parametrize("offset", [-110.0, -5.0, 5.0, 170.0], ids=lambda o: f"host{o:+.0f}s")
def test_offsets_within_skew_and_margin_cost_nothing(offset: float) -> None:
    clock = Clock()
    host = ClockedHost(clock, offset)
    p = tollgate(host, clock)
    start = clock.now

    async def go() -> None:
        try:
            handle = await p.submit(REQ)
            while clock.now - start < 3 * TIMES.ttl:
                assert isinstance(await p.status(handle), Running)
                await p.ctx.sleep(20.0)
        finally:
            await p.aclose()

    asyncio.run(go())
    assert [outcome for _, outcome in host.requests if outcome != "ok"] == []
    assert p.auth.tokens.minted >= 3  # type: ignore[attr-defined]


def _error(host: ClockedHost, clock: Clock, *, submit: bool) -> AuthenticationError:
    p = tollgate(host, clock)

    async def go() -> None:
        try:
            await (p.submit(REQ) if submit else p.status(p.resume("r1")))
        finally:
            await p.aclose()

    with pytest.raises(AuthenticationError) as exc:
        asyncio.run(go())
    return exc.value


def test_a_persisting_offset_is_named_in_the_error_after_one_retry() -> None:
    clock = Clock()
    host = ClockedHost(clock, 2 * HOUR)
    error = _error(host, clock, submit=False)
    assert host.requests == [("GET", "token_late"), ("GET", "token_late")]
    text = str(error)
    assert error.code == "token_late" and not error.retryable and error.status_code == 401
    assert "a freshly signed token was refused as well" in text
    assert "about 2 h ahead (going by the Date header of its answer)" in text
    assert "token expired by the host's clock" in text
    assert KEY not in text and "tg1." not in text


def test_a_submit_refused_for_its_token_is_sent_once_and_named_without_a_date_header() -> None:
    clock = Clock()
    host = ClockedHost(clock, -HOUR, send_date=False)
    error = _error(host, clock, submit=True)
    assert host.requests == [("POST", "token_early")]
    text = str(error)
    assert error.code == "token_early"
    assert "a freshly signed token was refused, so" in text
    assert "more than 2 min behind (going by the token's validity window)" in text
