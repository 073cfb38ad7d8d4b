"""Rules the behavioural half judges any job by, whatever drove it (cassette or real run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from kling_core import errors
from kling_core.contract.models import MODELS
from kling_core.contract.status import Cancelled, Failed, Queued, Running, Succeeded, is_terminal
from kling_core.errors import FAILURE_ERRORS, KlingError, ProviderError
from kling_core.provider import JobHandle
from kling_core.testing.replay import ReplayOutcome, describe_exception

# Whether retrying later can help, per canonical error class (None: depends on the status).
RETRYABLE: Mapping[str, bool] = {
    "AuthenticationError": False,
    "InsufficientCreditsError": False,
    "ContentPolicyError": False,
    "ProviderValidationError": False,
    "RateLimitedError": True,
    "SubmitUncertainError": False,
    "ResultExpiredError": False,
}
# Failed.error.kind → the canonical error class a client raises for it.
# The client's own table, by class name (a failed job's kind -> the error it raises).
KIND_ERRORS: Mapping[str, str] = {kind: cls.__name__ for kind, cls in FAILURE_ERRORS.items()}


def error_problems(exc: BaseException, provider: str) -> list[str]:
    """What is wrong with a raised canonical error, judged by its class alone."""
    out = []
    if isinstance(exc, ProviderError):
        name = type(exc).__name__
        want = next((v for k, v in RETRYABLE.items() if isinstance(exc, getattr(errors, k))), None)
        if want is None and type(exc) is ProviderError and exc.status_code is not None:
            want = exc.status_code >= 500 or exc.status_code == 408
        if want is not None and exc.retryable is not want:
            out.append(f"{name} (HTTP {exc.status_code}) has retryable={exc.retryable}, expected {want}")
        if exc.provider != provider:
            out.append(f"{name}.provider is {exc.provider!r}, expected {provider!r}")
    return out


Trail = Sequence[tuple[str, Any, BaseException | None]]  # (op, value returned, error raised)


def replay_trail(outcome: ReplayOutcome) -> Trail:
    return [(so.step.op, so.value, so.error) for so in outcome.outcomes]


def lifecycle_problems(trail: Trail, provider: str) -> list[str]:
    """Semantic checks over one job's steps: one handle, consistent ids, terminal is final."""
    out: list[str] = []
    handle: JobHandle | None = None
    terminal = None
    for i, (op, value, error) in enumerate(trail, start=1):
        where = f"step {i} ({op})"
        if isinstance(value, JobHandle):
            handle = value
            if value.provider != provider:
                out.append(f"{where}: handle.provider is {value.provider!r}, expected {provider!r}")
            if not value.job_id:
                out.append(f"{where}: handle has an empty job_id")
        if isinstance(value, (Queued, Running, Succeeded, Failed, Cancelled)):
            if terminal is not None:
                out.append(f"{where}: a {value.state} status after the terminal {terminal}")
            if handle is not None and value.job_id != handle.job_id:
                out.append(f"{where}: status.job_id {value.job_id!r} is not the handle's {handle.job_id!r}")
            if value.provider != provider:
                out.append(f"{where}: status.provider is {value.provider!r}, expected {provider!r}")
            if isinstance(value, Succeeded):
                r = value.result
                if not r.video.url:
                    out.append(f"{where}: succeeded without a video URL")
                if handle is not None and r.job_id != handle.job_id:
                    out.append(f"{where}: result.job_id {r.job_id!r} is not the handle's {handle.job_id!r}")
                if r.provider != provider:
                    out.append(f"{where}: result.provider is {r.provider!r}, expected {provider!r}")
                if r.model not in MODELS:
                    out.append(f"{where}: result.model {r.model!r} is not a canonical model ({', '.join(MODELS)})")
            progress = getattr(value, "progress", None)
            if progress is not None and not 0 <= progress <= 100:
                out.append(f"{where}: progress {progress} is outside 0–100")
            if is_terminal(value):
                terminal = value.state
        if error is not None:
            if not isinstance(error, KlingError):
                out.append(f"{where}: raised a non-canonical {describe_exception(error)}")
            out += [f"{where}: {p}" for p in error_problems(error, provider)]
    return out


@attrs.frozen
class JobRun:
    """One job as a behaviour test judges it, whatever drove it (a cassette or a real run)."""

    label: str  # the cassette's file name, or what the suite ran
    trail: Trail
    failures: Sequence[str] = ()  # what the driver already found (a replay's expect mismatches)

    @property
    def final(self) -> Any:
        """The last step's value, or the error it raised."""
        if not self.trail:
            return None
        _, value, error = self.trail[-1]
        return error if error is not None else value

    def problems(self, provider: str) -> list[str]:
        return [f"{self.label}: {p}" for p in [*self.failures, *lifecycle_problems(self.trail, provider)]]


@attrs.frozen
class JobRuns:
    """The jobs a fixture drove for one behaviour, and where they came from (for messages)."""

    source: str
    runs: Sequence[JobRun] = ()


@attrs.frozen
class Resumed:
    """A job found again from its bare id, and (when the suite could read one) its status."""

    job_id: str
    handle: Any
    status: Any = None
    expected_state: str | None = None


def ended(value: Any) -> str:
    """How a job ended, for a message: a state, or the error it raised."""
    if isinstance(value, BaseException):
        return f"with {describe_exception(value)}"
    return str(getattr(value, "state", repr(value)))
