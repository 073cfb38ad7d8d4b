"""The Kling provider end to end over a mock transport: JWT use, reconcile, secrets, refusals."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kling_core_plugins.kling import KlingProvider, jwt

from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import Failed, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    InsufficientCreditsError,
    MissingKeyError,
    ProviderError,
    ProviderValidationError,
    SubmitUncertainError,
    UnsupportedError,
)
from kling_core.http.tokens import ExpiringTokenAuth, TokenCache
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle, ProviderContext
from kling_core.testing.replay import preflight

AK = "ak-CANARY-4f1c0e2a9b7d"
SK = "sk-CANARY-9d8e7f6a5b4c"
BASE = "https://api-singapore.klingai.com/v1/videos/omni-video"
REQ = EditRequest(
    prompt="Put the crown from @Image1 on her",
    video="https://media.example.com/v.mp4",
    images=["https://media.example.com/crown.png"],
    client_key="edit-0001",
)

Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.now = 1_763_700_000.0

    def __call__(self) -> float:
        return self.now


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})


def kerr(status: int, code: int, message: str = "m") -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message, "request_id": "r"})


def task(status: str, **extra: Any) -> dict[str, Any]:
    return {"task_id": "867", "task_status": status, "task_info": {"external_task_id": "edit-0001"}, **extra}


class Host:
    """A scripted host: answers in order and keeps every request.

    With a ``clock``, each answer takes a second, so a token minted after it differs.
    """

    def __init__(self, *answers: httpx.Response | Exception, clock: Clock | None = None) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.signed: list[str] = []  # as sent: a re-signed retry is the same request object
        self.clock = clock

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        self.signed.append(request.headers.get("authorization", ""))
        if self.clock is not None:
            self.clock.now += 1.0
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def tokens(self) -> list[str]:
        return [value.removeprefix("Bearer ") for value in self.signed]


async def _no_sleep(seconds: float) -> None:
    return None


def provider(host: Host, clock: Clock | None = None, **settings: Any) -> KlingProvider:
    from kling_core.settings import ProviderSettings

    ctx = ProviderContext(
        name="kling",
        settings=ProviderSettings(**settings),
        environ={"KLING_ACCESS_KEY": AK, "KLING_SECRET_KEY": SK},
        transport=httpx.MockTransport(host),
        sleep=_no_sleep,
        clock=clock or Clock(),
    )
    return KlingProvider(ctx)


def token_cache(p: KlingProvider) -> TokenCache:
    """The provider's token cache (it lives in the auth object that signs each request)."""
    assert isinstance(p.auth, ExpiringTokenAuth)
    return p.auth.tokens


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _job(p: KlingProvider, n_status: int) -> list[Any]:
    try:
        handle = await p.submit(REQ)
        return [handle] + [await p.status(handle) for _ in range(n_status)]
    finally:
        await p.aclose()


def test_bearer_jwt_is_signed_with_the_secret_and_reused() -> None:
    host = Host(ok(task("submitted")), ok(task("processing")), ok(task("processing")))
    clock = Clock()
    p = provider(host, clock)
    trail = run(_job(p, 2))
    assert trail[0].job_id == "867" and trail[0].data["external_task_id"] == "edit-0001"
    tokens = host.tokens()
    assert len(set(tokens)) == 1, "one token for the whole poll loop"
    claims = jwt.verify(tokens[0], SK)
    assert claims["iss"] == AK
    assert claims["nbf"] <= clock.now < claims["exp"]  # type: ignore[operator]
    assert token_cache(p).minted == 1


def test_a_new_token_is_minted_near_expiry() -> None:
    host = Host(ok(task("processing")), ok(task("processing")))
    clock = Clock()
    p = provider(host, clock)

    async def go() -> None:
        handle = p.resume("867")
        await p.status(handle)
        clock.now += jwt.TIMES.ttl - jwt.TIMES.margin + 1
        await p.status(handle)
        await p.aclose()

    run(go())
    first, second = host.tokens()
    assert first != second and token_cache(p).minted == 2
    assert jwt.verify(second, SK)["exp"] == int(clock.now + jwt.TIMES.ttl)


def status_of(p: KlingProvider, job_id: str = "867") -> Any:
    async def go() -> Any:
        try:
            return await p.status(p.resume(job_id))
        finally:
            await p.aclose()

    return run(go())


# --- token auth: a GET refused for its token is signed again once; a POST never ----------


@pytest.mark.parametrize("code", [1003, 1004])
@pytest.mark.parametrize("http_status", [401, 200])
def test_a_get_refused_for_its_token_is_retried_once_with_a_fresh_token(code: int, http_status: int) -> None:
    clock = Clock()
    host = Host(kerr(http_status, code, "Authorization has expired"), ok(task("processing")), clock=clock)
    p = provider(host, clock)
    st = status_of(p)
    assert isinstance(st, Running) and st.job_id == "867"
    assert [r.method for r in host.requests] == ["GET", "GET"]
    assert str(host.requests[0].url) == str(host.requests[1].url) == f"{BASE}/867"
    first, second = host.tokens()
    assert first != second, "the retry carries a freshly minted token"
    assert token_cache(p).minted == 2
    assert jwt.verify(second, SK)["iss"] == AK


def test_clock_error_says_so_when_the_fresh_token_is_refused_too() -> None:
    clock = Clock()
    host = Host(kerr(401, 1004, "Authorization has expired"), kerr(401, 1004, "Authorization has expired"),
                clock=clock)
    p = provider(host, clock)
    with pytest.raises(AuthenticationError, match="system clock") as exc:
        status_of(p)
    assert exc.value.code == "1004" and not exc.value.retryable and exc.value.status_code == 401
    assert exc.value.job_id == "867"
    assert "Authorization has expired" in str(exc.value)
    assert len(host.requests) == 2, "one retry, not a loop"
    first, second = host.tokens()
    assert first != second


def test_a_token_refused_on_the_retry_is_dropped_too() -> None:
    clock = Clock()
    host = Host(kerr(401, 1004), kerr(401, 1004), ok(task("processing")), clock=clock)
    p = provider(host, clock)

    async def go() -> None:
        handle = p.resume("867")
        with pytest.raises(AuthenticationError):
            await p.status(handle)
        await p.status(handle)
        await p.aclose()

    run(go())
    tokens = host.tokens()
    assert len(tokens) == 3 and tokens[2] not in tokens[:2]
    assert token_cache(p).minted == 3  # the refused token was dropped, not reused


@pytest.mark.parametrize("http_status", [401, 200])
def test_a_post_refused_for_its_token_is_never_repeated_but_the_token_is_dropped(http_status: int) -> None:
    clock = Clock()
    host = Host(kerr(http_status, 1004, "Authorization has expired"), ok(task("processing")), clock=clock)
    p = provider(host, clock)

    async def go() -> None:
        try:
            with pytest.raises(AuthenticationError, match="system clock") as exc:
                await p.submit(REQ)
            assert exc.value.code == "1004" and not exc.value.retryable
            assert exc.value.status_code == (None if http_status == 200 else 401)
            assert len(host.requests) == 1, "a submit is never sent twice"
            await p.status(p.resume("867"))
        finally:
            await p.aclose()

    run(go())
    assert [r.method for r in host.requests] == ["POST", "GET"]
    first, second = host.tokens()
    assert first != second and token_cache(p).minted == 2  # the refused token was not reused


@pytest.mark.parametrize(("status", "code"), [(401, 1000), (401, 1001), (401, 1002), (429, 1102), (200, 1002)])
def test_other_codes_do_not_resign_the_request(status: int, code: int) -> None:
    host = Host(kerr(status, code), ok(task("processing")))
    p = provider(host)
    with pytest.raises(ProviderError) as exc:
        status_of(p)
    assert exc.value.code == str(code)
    assert len(host.requests) == 1 and token_cache(p).minted == 1


# --- errors inside an HTTP 200 answer -------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (1102, InsufficientCreditsError, False),
        (1203, ProviderError, False),
        (1301, ContentPolicyError, False),
        (5000, ProviderError, True),
    ],
)
def test_an_error_code_in_a_200_status_answer_is_raised(code: int, cls: type[ProviderError], retryable: bool) -> None:
    host = Host(kerr(200, code, "host says no"))
    with pytest.raises(ProviderError) as exc:
        status_of(provider(host))
    assert type(exc.value) is cls
    assert (exc.value.code, exc.value.retryable, exc.value.status_code, exc.value.job_id) == (
        str(code), retryable, None, "867")
    assert "host says no" in str(exc.value) and "HTTP 200" in str(exc.value)
    assert len(host.requests) == 1


@pytest.mark.parametrize(
    ("code", "cls"),
    [(1200, ProviderValidationError), (1201, ProviderValidationError), (1102, InsufficientCreditsError),
     (1301, ContentPolicyError), (5001, ProviderError)],
)
def test_an_error_code_in_a_200_submit_answer_is_raised_not_uncertain(code: int, cls: type[ProviderError]) -> None:
    host = Host(kerr(200, code, "model_name invalid"))
    p = provider(host)
    with pytest.raises(ProviderError) as exc:
        run(_job(p, 0))
    assert type(exc.value) is cls and not isinstance(exc.value, SubmitUncertainError)
    assert exc.value.code == str(code) and exc.value.status_code is None
    assert "model_name invalid" in str(exc.value) and "HTTP 200" in str(exc.value)
    assert len(host.requests) == 1


def test_a_200_answer_with_code_0_but_no_task_is_an_uncertain_submit() -> None:
    host = Host(httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": {}}))
    p = provider(host)
    with pytest.raises(SubmitUncertainError) as exc:
        run(_job(p, 0))
    assert exc.value.client_key == "edit-0001" and len(host.requests) == 1


def test_a_whole_job_polls_to_the_result() -> None:
    video = {"url": "https://cdn.klingai.com/o.mp4", "duration": "5.1"}
    host = Host(
        ok(task("submitted")),
        ok(task("processing")),
        ok(task("succeed", task_result={"videos": [video]}, final_unit_deduction="4",
                created_at=1_763_700_000_000, updated_at=1_763_700_100_000)),
    )
    p = provider(host)
    handle, running, done = run(_job(p, 2))
    assert handle.client_key == "edit-0001" and handle.submitted_at == Clock().now
    assert isinstance(running, Running)
    assert isinstance(done, Succeeded)
    assert done.result.video.url == video["url"] and done.result.model == "kling-o1"
    assert done.result.cost is not None and done.result.cost.credits == 4.0
    assert done.result.report == {"duration": 5.1}
    assert [r.method for r in host.requests] == ["POST", "GET", "GET"]
    assert str(host.requests[2].url) == f"{BASE}/867"


def test_a_failed_task_is_a_failed_status_not_an_error() -> None:
    host = Host(ok(task("failed", task_status_msg="Failure to pass the risk control system")))
    st = status_of(provider(host))
    assert isinstance(st, Failed) and st.error.message == "Failure to pass the risk control system"


# --- lost submits --------------------------------------------------------------------


def test_submit_timeout_is_sent_once_and_names_the_client_key() -> None:
    host = Host(httpx.ReadTimeout("lost"))
    p = provider(host)
    with pytest.raises(SubmitUncertainError) as exc:
        run(_job(p, 0))
    assert len(host.requests) == 1
    assert "edit-0001" in str(exc.value)
    assert exc.value.client_key == "edit-0001" and not exc.value.retryable
    assert json.loads(host.requests[0].content)["external_task_id"] == "edit-0001"


def test_submit_timeout_says_how_to_reconcile() -> None:
    host = Host(httpx.ReadTimeout("lost"))
    with pytest.raises(SubmitUncertainError) as exc:
        run(_job(provider(host), 0))
    assert "kling status kling edit-0001" in str(exc.value)


def test_submit_timeout_without_a_client_key_still_reports_uncertainty() -> None:
    host = Host(httpx.ReadTimeout("lost"))
    p = provider(host)

    async def go() -> None:
        try:
            await p.submit(EditRequest(prompt="x", video="https://media.example.com/v.mp4"))
        finally:
            await p.aclose()

    with pytest.raises(SubmitUncertainError) as exc:
        run(go())
    assert exc.value.client_key is None
    assert "external_task_id" not in json.loads(host.requests[0].content)


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        (ok(task("processing")), True),
        (kerr(404, 1203, "task not found"), False),
        (kerr(200, 1203, "task not found"), False),
        (httpx.Response(404, text="not found"), False),
    ],
)
def test_reconcile_by_external_task_id(answer: httpx.Response, found: bool) -> None:
    host = Host(answer)
    p = provider(host)

    async def go() -> JobHandle | None:
        try:
            return await p.reconcile("edit-0001")
        finally:
            await p.aclose()

    handle = run(go())
    assert [str(r.url) for r in host.requests] == [f"{BASE}/edit-0001"]
    assert host.requests[0].method == "GET"
    if found:
        assert handle is not None and handle.job_id == "867" and handle.client_key == "edit-0001"
    else:
        assert handle is None


def test_reconcile_raises_other_errors() -> None:
    p = provider(Host(kerr(401, 1000, "bad key")))

    async def go() -> None:
        try:
            await p.reconcile("edit-0001")
        finally:
            await p.aclose()

    with pytest.raises(AuthenticationError):
        run(go())


def test_out_of_credit_on_a_status_get_is_not_retried() -> None:
    host = Host(kerr(429, 1102, "resource pack exhausted"))
    p = provider(host)

    async def go() -> None:
        try:
            await p.status(p.resume("867"))
        finally:
            await p.aclose()

    with pytest.raises(InsufficientCreditsError):
        run(go())
    assert len(host.requests) == 1


@pytest.mark.parametrize(
    ("response", "retry"),
    [
        (kerr(429, 1102), False),
        (kerr(429, 1100), False),
        (kerr(429, 1304), False),
        (kerr(429, 1302), True),
        (kerr(429, 1303), True),
        (kerr(503, 5001), True),
        (kerr(504, 5002), True),
        (httpx.Response(429, text="slow down"), False),
        (httpx.Response(502, text="bad gateway"), True),
    ],
)
def test_may_retry_reads_the_service_code(response: httpx.Response, retry: bool) -> None:
    assert provider(Host()).may_retry(response) is retry


@pytest.mark.parametrize(
    ("status", "body", "retry"),
    [
        (429, {"code": 1102, "message": "m"}, False),
        (429, {"code": 1100, "message": "m"}, False),
        (429, {"code": 1304, "message": "m"}, False),
        (429, {"code": 1302, "message": "m"}, True),
        (429, {"code": 1303, "message": "m"}, True),
        (503, {"code": 5001, "message": "m"}, True),
        (504, {"code": 5002, "message": "m"}, True),
        (429, "slow down", False),
        (502, "bad gateway", True),
    ],
)
def test_a_status_get_is_retried_only_where_the_code_says_it_can_help(status: int, body: Any, retry: bool) -> None:
    first = httpx.Response(status, text=body) if isinstance(body, str) else httpx.Response(status, json=body)
    host = Host(first, ok(task("processing")))
    p = provider(host)
    if retry:
        assert isinstance(status_of(p), Running)
        assert len(host.requests) == 2
    else:
        with pytest.raises(ProviderError) as exc:
            status_of(p)
        assert exc.value.status_code == status and not exc.value.retryable
        assert len(host.requests) == 1


def test_elements_are_refused_before_any_call() -> None:
    host = Host()
    p = provider(host)
    req = EditRequest(
        prompt="@Element1 dances",
        video="https://media.example.com/v.mp4",
        elements=[Element("https://media.example.com/f.png", ["https://media.example.com/r.png"])],
    )
    with pytest.raises(UnsupportedError) as exc:
        preflight(p, req)
    assert any(pr.path == "elements" for pr in exc.value.problems)
    assert "kling" in str(exc.value)
    assert host.requests == []


def test_regional_base_url_from_config() -> None:
    host = Host(ok(task("submitted")))
    p = provider(host, base_url="https://api.klingai.com/")
    run(_job(p, 0))
    assert str(host.requests[0].url) == "https://api.klingai.com/v1/videos/omni-video"


def test_no_secret_or_token_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "kling_core"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    host = Host(
        ok(task("submitted")),
        ok(task("succeed", task_result={"videos": [{"url": "https://cdn.klingai.com/o.mp4", "duration": "5"}]})),
        kerr(401, 1002, "token invalid"),
        kerr(429, 1102, "exhausted"),
        httpx.ReadTimeout("lost"),
    )
    p = provider(host)
    texts: list[str] = [repr(p), str(p), repr(vars(p)), repr(token_cache(p))]

    async def go() -> None:
        handle = await p.submit(REQ)
        texts.append(repr(handle))
        texts.append(repr(await p.status(handle)))
        for _ in range(2):
            try:
                await p.status(handle)
            except ProviderError as exc:
                texts.extend([str(exc), repr(exc), repr(vars(exc))])
        try:
            await p.submit(REQ)
        except ProviderError as exc:
            texts.extend([str(exc), repr(exc), repr(vars(exc))])
        await p.aclose()

    run(go())
    tokens = set(host.tokens())
    assert tokens and len(host.requests) == 5
    texts += [r.getMessage() for r in caplog.records]
    texts += [caplog.text]
    blob = "\n".join(texts)
    for secret in (AK, SK, *tokens):
        assert secret not in blob


def test_missing_secret_key_is_named() -> None:
    ctx = ProviderContext(name="kling", environ={"KLING_ACCESS_KEY": AK})
    with pytest.raises(MissingKeyError, match="KLING_SECRET_KEY"):
        KlingProvider(ctx)


def test_registered_through_the_entry_point() -> None:
    host = PluginHost(environ={"KLING_PLUGINS": "kling"})
    assert host.provider_class("kling") is KlingProvider


def test_a_token_echoed_by_the_host_is_scrubbed_from_the_error() -> None:
    class Echo(Host):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            token = request.headers["authorization"]
            self.signed.append(token)
            return httpx.Response(401, json={"code": 1002, "message": f"bad token {token} for {AK}"})

    host = Echo()
    p = provider(host)
    with pytest.raises(AuthenticationError) as exc:
        run(_job(p, 0))
    (token,) = host.tokens()
    assert token not in str(exc.value) and AK not in str(exc.value)
