"""Two guards of "a paid job is submitted at most once":

- A client key given by hand is checked against the request it was used for, even when it is
  a derived key (``<base>-1``, as ``kling jobs`` shows it): another request, or another host,
  under it is refused, never handed the first request's job. The same request under it still
  picks its job up.
- Fallback never passes over a host whose submit the job log calls uncertain (the job may
  exist there), whatever the error's class: a refusal class on a 5xx/408 or 2xx answer, or
  naming a job id, is such a submit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from kling_core_plugins.kling import wire
from test_resume import URL, Host, run

from kling_core import hookimpl
from kling_core.client import AsyncEditClient, Started
from kling_core.client.fallback import DEFINITE_REFUSALS, definite_refusal
from kling_core.client.send import may_have_made_a_job
from kling_core.config import config_from_document
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus, Queued
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    KlingError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ValidationError,
)
from kling_core.http.errormap import ErrorInfo
from kling_core.joblog import JobLog
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle, Provider
from kling_core.settings import PollSettings


@pytest.fixture(autouse=True)
def _reset() -> None:
    Host.submits, Host.jobs, Host.by_key, Host.cancelled, Host.lose_answers = [], {}, {}, [], 0
    Sent.hosts = []


# -- an explicit client key equal to a derived one ------------------------------------------


def _refused_on_client_key(exc: ValidationError) -> None:
    assert [p.path for p in exc.problems] == ["client_key"]
    assert "already used for a different request" in str(exc)


def test_a_derived_key_given_by_hand_with_another_request_is_refused(tmp_path: Path) -> None:
    _job, _picked, key = run(tmp_path)
    assert key.endswith("-1")
    with pytest.raises(ValidationError) as caught:
        run(tmp_path, client_key=key, prompt="something else entirely")
    _refused_on_client_key(caught.value)
    assert len(Host.submits) == 1


def test_a_derived_key_given_by_hand_on_another_host_is_refused(tmp_path: Path) -> None:
    _job, _picked, key = run(tmp_path)  # logged on "durable"
    with pytest.raises(ValidationError) as caught:
        run(tmp_path, provider="reconciling", client_key=key)
    _refused_on_client_key(caught.value)
    assert len(Host.submits) == 1


def test_the_same_request_under_its_derived_key_given_by_hand_picks_its_job_up(tmp_path: Path) -> None:
    job, _picked, key = run(tmp_path)
    assert run(tmp_path, client_key=key) == (job, True, key)
    assert len(Host.submits) == 1


# -- fallback after a submit the job log calls uncertain ------------------------------------

CAPS = dict(models=(ModelCapabilities("kling-o1"),), accepts_local_files=False)


class Sent:
    hosts: ClassVar[list[str]] = []


class First(Provider):
    """Answers every submit with ``error``."""

    name = "first"
    capabilities = ProviderCapabilities(**CAPS)  # type: ignore[arg-type]
    default_poll = PollSettings(initial=1.0, factor=1.0, max=1.0, jitter=0.0, deadline=60.0)
    error: ClassVar[Exception] = RuntimeError("unset")

    async def submit(self, request: EditRequest) -> JobHandle:
        Sent.hosts.append(self.name)
        raise type(self).error

    async def status(self, handle: JobHandle) -> JobStatus:
        return Queued(handle.job_id, self.name)


class Second(First):
    name = "second"

    async def submit(self, request: EditRequest) -> JobHandle:
        Sent.hosts.append(self.name)
        return JobHandle(provider=self.name, job_id="second-1", model=request.model)


class Plugin:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(First)
        register(Second)


def _fallback(c: AsyncEditClient, error: Exception) -> Started:
    First.error = error
    return asyncio.run(c.start(c.request(URL, "x"), provider="first,second"))


def _client(tmp_path: Path) -> AsyncEditClient:
    host = PluginHost(entrypoints=False, plugins=[("fakes", Plugin())])
    return AsyncEditClient(config=config_from_document({}), host=host, journal=JobLog(tmp_path / "state"))


@pytest.mark.parametrize("error", [
    InsufficientCreditsError("out of credit (in a 200 body)", provider="first", status_code=200),
    RateLimitedError("busy", provider="first", status_code=503),
    AuthenticationError("token expired", provider="first", status_code=408),
    ProviderValidationError("bad field", provider="first", status_code=400, job_id="first-7"),
], ids=["credits-in-200", "ratelimited-503", "auth-408", "validation-with-job-id"])
def test_a_submit_logged_uncertain_never_falls_through(tmp_path: Path, error: ProviderError) -> None:
    c = _client(tmp_path)
    with pytest.raises(KlingError) as caught:
        _fallback(c, error)
    assert Sent.hosts == ["first"]
    assert "the job may exist there" in str(caught.value) and "second was not tried" in str(caught.value)
    assert [(r.provider, r.state) for r in c.jobs(limit=0)] == [("first", "uncertain")]


def test_a_refusal_before_the_host_took_it_still_tries_the_next_host(tmp_path: Path) -> None:
    """Guard: a 429 refusal made no job, so fallback goes on (true with or without the fix)."""
    started = _fallback(_client(tmp_path), RateLimitedError("slow down", provider="first", status_code=429))
    assert Sent.hosts == ["first", "second"] and started.handle.job_id == "second-1"


def test_kling_refusal_codes_on_an_answer_that_may_have_made_a_job_are_never_definite_refusals() -> None:
    """Every code of Kling's table on a status send() logs as uncertain (5xx, 408): the class
    may be a refusal (1302 on a 503 is RateLimitedError), the outcome is not."""
    built = [wire.ERRORS.build("kling", status, ErrorInfo(message="m", code=code))
             for code in wire.ERRORS.by_code for status in (408, 500, 502, 503, 504)]
    assert any(isinstance(err, DEFINITE_REFUSALS) for err in built)  # the case this guards against
    for err in built:
        assert may_have_made_a_job(err), err
        assert not definite_refusal(err), f"{type(err).__name__}: {err}"
