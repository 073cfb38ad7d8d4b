"""Replay a cassette against a provider plugin, offline, and say exactly what differed.

The provider is built with canary credentials and an ``httpx.MockTransport`` injected through
``ProviderContext.transport`` (nothing is patched for the plugin's own calls). Each step's
recorded interactions must be requested in order, each exactly once, and nothing else; a
respx catch-all additionally reports any request that escaped the injected transport.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
from attrs import field

from kling_core import errors
from kling_core.contract.models import EditRequest
from kling_core.plugins import base_provider
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider
from kling_core.serialization import unstructure
from kling_core.testing.cassettes import Cassette, Interaction, RecordedResponse, Step
from kling_core.testing.credential_check import (
    credential_problems,
    credential_values,
    declaration_problems,
    signed_token_declaration,
)
from kling_core.testing.doubles import (
    UNEXPECTED_STATUS,
    CallLog,
    build_provider,
    canary_credentials,
    refusing_transport,
)
from kling_core.testing.log_capture import all_log_records, secrets_logged
from kling_core.testing.matching import canary_leaks, request_problems, subset_problems
from kling_core.testing.tables import as_response, entry_for

# The doubles used to live here; existing imports keep working.
__all__ = [
    "CallLog",
    "ContractFailure",
    "ReplayOutcome",
    "StepOutcome",
    "build_provider",
    "canary_credentials",
    "check_expect",
    "describe_exception",
    "preflight",
    "refusing_transport",
    "replay",
    "replay_async",
]


class ContractFailure(AssertionError):
    """The plugin did not do what the contract (or a cassette) requires."""


def preflight(provider: Provider, request: EditRequest) -> None:
    """The client's checks without the file-system look-up (kept for existing imports).

    The suite itself calls :func:`kling_core.preflight.check_request`, as the client does.
    """
    check_request(provider, request, check_files=False)


class _Replayer:
    """The transport handler: hands out one step's interactions in order and checks each."""

    def __init__(
        self,
        cassette: Cassette,
        canaries: list[str],
        *,
        check_requests: bool = True,
        credentials: Mapping[str, str] | None = None,
        signed_token: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.cassette = cassette
        self.check_requests = check_requests
        self.canaries = canaries
        self.credentials = dict(credentials or {})
        self.signed_token = signed_token
        self.clock = clock  # the replay's virtual time: it advances only by the plugin's sleeps
        # (label, seconds asked, virtual time served) of the last answer carrying Retry-After.
        self.wait: tuple[str, float, float] | None = None
        self.issued: set[str] = set()  # every string the answers served so far held (tokens handed out)
        self.failures: list[str] = []
        self.pending: list[Interaction] = []
        self.where = ""
        self.served = 0
        self.total = 0
        self.requests: list[httpx.Request] = []

    def start_step(self, index: int, step: Step) -> None:
        self.pending = list(step.interactions)
        self.total = len(step.interactions)
        self.served = 0
        self.where = f"step {index + 1} ({step.op})"
        self.wait = None  # between steps the caller waits, not the plugin

    def finish_step(self) -> None:
        for k, it in enumerate(self.pending, start=self.served + 1):
            self.failures.append(
                f"{self.where}, interaction {k} of {self.total} ({it.request.method} {it.request.url}): "
                "recorded but never requested"
            )
        self.pending = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        for leak in canary_leaks(request, self.canaries):
            self.failures.append(f"{self.where}: {request.method} {request.url.copy_with(query=None)}: {leak}")
        if not self.pending:
            self.failures.append(
                f"{self.where}: unexpected request {request.method} {request.url} "
                f"(the cassette records {self.total} interaction(s) for this step, all already used)"
            )
            return httpx.Response(UNEXPECTED_STATUS, json={"error": "unexpected request: not in the cassette"})
        it = self.pending.pop(0)
        self.served += 1
        label = f"{self.where}, interaction {self.served} of {self.total} ({it.request.method} {it.request.url})"
        if self.wait is not None:
            asked_at, seconds, served_at = self.wait
            waited = self.clock() - served_at
            if waited < seconds:
                self.failures.append(
                    f"{label}: sent {waited:g} s after {asked_at} answered Retry-After: {seconds:g} "
                    "(the host's wait must be honoured before the next request)"
                )
        self.wait = None
        if self.check_requests:
            for problem in request_problems(it.request, request):
                self.failures.append(f"{label}: {problem}")
            for problem in credential_problems(it.request, request, self.credentials, self.signed_token, self.issued):
                self.failures.append(f"{label}: {problem}")
        self.issued |= _answer_strings(it.response)
        asked = retry_after_seconds(it.response)
        if asked is not None:
            self.wait = (f"interaction {self.served}", asked, self.clock())
        return respond(it.response, request)

    def escaped(self, request: httpx.Request) -> httpx.Response:
        self.failures.append(
            f"{self.where}: {request.method} {request.url.copy_with(query=None)} did not go through "
            "ProviderContext.transport (the provider must build its HTTP client with ctx.transport)"
        )
        return httpx.Response(UNEXPECTED_STATUS, json={"error": "request escaped the injected transport"})


_RAISES: dict[str, Callable[[str, httpx.Request], Exception]] = {
    "ConnectError": lambda m, r: httpx.ConnectError(m, request=r),
    "ConnectTimeout": lambda m, r: httpx.ConnectTimeout(m, request=r),
    "ReadTimeout": lambda m, r: httpx.ReadTimeout(m, request=r),
    "RemoteProtocolError": lambda m, r: httpx.RemoteProtocolError(m, request=r),
}


def respond(recorded: RecordedResponse, request: httpx.Request) -> httpx.Response:
    if recorded.raise_ is not None:
        raise _RAISES[recorded.raise_](f"recorded transport failure: {recorded.raise_}", request)
    response = as_response(recorded)
    response.request = request
    return response


def _answer_strings(recorded: RecordedResponse) -> set[str]:
    """Every whole string an answer holds (JSON string values, header values, words of a text body,
    and each cookie a Set-Cookie hands out: ``name=value`` and the value alone)."""
    out = set(recorded.headers.values()) | set((recorded.text or "").split())
    for key, value in recorded.headers.items():
        if key.lower() == "set-cookie":
            pair = value.split(";", 1)[0].strip()
            out |= {pair, pair.partition("=")[2]}

    def walk(doc: Any) -> None:
        if isinstance(doc, str):
            out.add(doc)
        elif isinstance(doc, Mapping):
            for v in doc.values():
                walk(v)
        elif isinstance(doc, (list, tuple)):
            for v in doc:
                walk(v)

    walk(recorded.json)
    return out


def retry_after_seconds(recorded: RecordedResponse) -> float | None:
    """A recorded answer's Retry-After in seconds (the delay form; an HTTP date is not judged)."""
    value = next((v for k, v in recorded.headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def describe_exception(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"


def check_expect(step: Step, value: Any, exc: BaseException | None) -> list[str]:
    """How the step's outcome differs from ``expect`` (only given keys are compared)."""
    kind = step.expect_kind
    want = step.expect[kind]
    if kind == "error":
        cls = getattr(errors, want["type"])
        if exc is None:
            return [f"expected {want['type']}, but the call returned {_show(value)}"]
        # The exact class: a cassette expecting ProviderError is not satisfied by a subclass
        # (a wrong error-table entry must not pass as its base class).
        if type(exc) is not cls:
            return [f"expected {want['type']}, got {describe_exception(exc)}"]
        out = []
        for key in ("retryable", "status_code", "code", "retry_after"):
            if key in want and getattr(exc, key, None) != want[key]:
                out.append(f"{type(exc).__name__}.{key}: expected {want[key]!r}, got {getattr(exc, key, None)!r}")
        return out
    if exc is not None:
        return [f"expected {kind} {want!r}, but it raised {describe_exception(exc)}"]
    if kind == "cancelled":
        return [] if value is want else [f"cancel returned {value!r}, expected {want!r}"]
    doc = unstructure(value) if attrs.has(type(value)) else value
    problems = subset_problems(want, doc)
    return [f"{kind}: {p}" for p in problems]


def _as_provider(step: Step, recorded: str, name: str) -> Step:
    """The step's expectation with the recorded provider's name read as ``name`` (a provider
    declared in config replays its base provider's cassettes under its own name)."""
    if recorded == name:
        return step

    def rename(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: name if k == "provider" and v == recorded else rename(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [rename(v) for v in value]
        return value

    return attrs.evolve(step, expect=rename(step.expect))


def _show(value: Any) -> str:
    try:
        return repr(unstructure(value)) if attrs.has(type(value)) else repr(value)
    except Exception:
        return repr(value)


@attrs.define
class StepOutcome:
    step: Step
    value: Any = None
    error: BaseException | None = None


@attrs.define
class ReplayOutcome:
    cassette: Cassette = field(repr=lambda c: repr(getattr(c, "scenario", None)))
    failures: list[str] = field(factory=list)
    # Not in the repr: tracebacks print it, and requests carry the (canary) credential.
    outcomes: list[StepOutcome] = field(factory=list, repr=False)
    sleeps: list[float] = field(factory=list)
    requests: list[httpx.Request] = field(factory=list, repr=False)

    def check(self) -> None:
        if self.failures:
            lines = "\n".join(f"  - {f}" for f in self.failures)
            raise ContractFailure(
                f"cassette {self.cassette.path} (scenario {self.cassette.scenario!r}, provider "
                f"{self.cassette.provider!r}) did not replay:\n{lines}"
            )


async def _run_op(provider: Provider, step: Step, request: EditRequest, handle: JobHandle | None) -> Any:
    if step.op == "submit":
        check_request(provider, request)
        prepared = await provider.prepare(request)
        return await provider.submit(prepared)
    if step.op == "status":
        assert handle is not None
        return await provider.status(handle)
    if step.op == "cancel":
        assert handle is not None
        return await provider.cancel(handle)
    if step.op == "resume":
        return provider.resume(step.args["job_id"], model=step.args.get("model"))
    if step.op == "dry_run":
        check_request(provider, request)
        return await provider.dry_run(request)
    raise AssertionError(f"unknown op {step.op!r}")


async def replay_async(
    provider_cls: type[Provider],
    cassette: Cassette,
    *,
    work_dir: Path | None = None,
    check_requests: bool = True,
) -> ReplayOutcome:
    """Replay one cassette; ``check_requests=False`` serves the responses without comparing
    what was sent (the behavioural half judges outcomes; the wire half judges requests)."""
    import respx

    environ = canary_credentials(provider_cls)
    canaries = list(environ.values())
    outcome = ReplayOutcome(cassette)
    t0 = 1_767_225_600.0  # a fixed clock that advances only by the recorded sleeps

    async def sleep(seconds: float) -> None:
        outcome.sleeps.append(seconds)

    def clock() -> float:
        return t0 + sum(outcome.sleeps)

    creds = credential_values(provider_cls, environ)
    signed = signed_token_declaration(provider_cls)
    replayer = _Replayer(
        cassette, canaries, check_requests=check_requests, credentials=creds, signed_token=signed, clock=clock
    )
    replayer.failures = outcome.failures  # one list: problems stay in the order they happened
    broken = declaration_problems(signed, creds) if signed is not None else []
    if broken:  # reported, and not used to judge tokens (it would crash)
        outcome.failures += [f"{provider_cls.__name__}.{p}" for p in broken]
        replayer.signed_token = None

    # A provider declared in config (`uses = "kling"`) replays its base provider's cassettes.
    if cassette.provider not in (provider_cls.name, base_provider(provider_cls)):
        outcome.failures.append(f"the cassette is for provider {cassette.provider!r}, not {provider_cls.name!r}")
    with all_log_records() as records, respx.mock(assert_all_called=False, assert_all_mocked=False) as guard:
        guard.route().mock(side_effect=replayer.escaped)
        provider = build_provider(
            provider_cls,
            environ=environ,
            transport=httpx.MockTransport(replayer.handler),
            options=cassette.options,
            base_url=cassette.base_url,
            sleep=sleep,
            clock=clock,
            work_dir=work_dir,
        )
        handle: JobHandle | None = None
        logged = 0  # log records already judged
        try:
            for i, step in enumerate(cassette.steps):
                replayer.start_step(i, step)
                so = StepOutcome(step)
                try:
                    so.value = await _run_op(provider, step, cassette.request, handle)
                except Exception as exc:
                    so.error = exc
                replayer.finish_step()
                outcome.outcomes.append(so)
                problems = check_expect(_as_provider(step, cassette.provider, provider_cls.name), so.value, so.error)
                outcome.failures += [f"{replayer.where}: {p}" for p in problems]
                if problems and step.expect_kind == "error":
                    # A wrong canonical error is fixed in the plugin's table: name the entry.
                    entry = entry_for(provider, so.error, [it.response for it in step.interactions])
                    if entry is not None:
                        outcome.failures.append(f"{replayer.where}: the plugin's table entry: {entry}")
                if so.error is not None:
                    outcome.failures += _secret_in_error(replayer.where, so.error, canaries)
                outcome.failures += _secret_in_value(replayer.where, so.value, canaries)
                outcome.failures += [f"{replayer.where}: {p}" for p in secrets_logged(records[logged:], canaries)]
                logged = len(records)
                if isinstance(so.value, JobHandle):
                    handle = so.value
        finally:
            await provider.aclose()
    outcome.failures += [f"after the last step: {p}" for p in secrets_logged(records[logged:], canaries)]
    outcome.requests = replayer.requests
    # A failure message must not print the credential it caught leaking.
    outcome.failures[:] = [_mask(f, canaries) for f in outcome.failures]
    return outcome


def _mask(text: str, canaries: list[str]) -> str:
    for c in canaries:
        text = text.replace(c, "<CREDENTIAL>")
    return text


def _secret_in_error(where: str, exc: BaseException, canaries: list[str]) -> list[str]:
    text = f"{exc!s} {exc!r} {vars(exc) if hasattr(exc, '__dict__') else ''}"
    return [f"{where}: the credential appears in the raised {type(exc).__name__}" for c in canaries if c in text]


def _secret_in_value(where: str, value: Any, canaries: list[str]) -> list[str]:
    """A credential in what the plugin returned (a handle, its ``data``, a status, a result):
    the client stores these in the job log and prints them."""
    if value is None:
        return []
    texts = [repr(value)]
    try:
        texts.append(repr(unstructure(value)))
    except Exception:
        texts.append(repr(vars(value)) if hasattr(value, "__dict__") else "")
    text = "\n".join(texts)
    if any(c in text for c in canaries):
        return [f"{where}: the credential appears in the returned {type(value).__name__}"]
    return []


def replay(
    provider_cls: type[Provider],
    cassette: Cassette,
    *,
    work_dir: Path | None = None,
    check_requests: bool = True,
) -> ReplayOutcome:
    """Replay one cassette (synchronously); read ``.failures`` or call ``.check()``."""
    return asyncio.run(replay_async(provider_cls, cassette, work_dir=work_dir, check_requests=check_requests))
