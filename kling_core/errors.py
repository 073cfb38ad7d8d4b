"""One hierarchy for every expected failure.

Each error knows whether it is the caller's fault (``exit_code == 2``: bad input, config or
media) or the remote side's (``exit_code == 1``), so the CLI can map it without a traceback.
Messages never interpolate secrets: callers pass field names and reasons, not values of keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs


@attrs.frozen
class Problem:
    """One validation problem: a dotted field path and a human reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def seconds_text(seconds: float) -> str:
    """A duration for a message: whole seconds as before ("30s"), a sub-second one as it is
    ("0.5s"), where rounding would print a misleading "0s"."""
    return f"{seconds:.0f}s" if seconds >= 1 or seconds <= 0 else f"{seconds:.2g}s"


class KlingError(Exception):
    """Base of every error kling-core raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- the caller's fault (exit code 2) -------------------------------------------------


class ConfigError(KlingError):
    """A config file or config value is wrong; names the file and key where known."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.key = key
        self.reason = message


class MissingKeyError(ConfigError):
    """A provider needs a credential that is not set; names the variable to set, or the
    ``keyring:SERVICE/NAME`` reference that holds nothing."""

    def __init__(self, provider: str, variable: str) -> None:
        where = (f"nothing stored in the system keyring at {variable}" if variable.startswith("keyring:")
                 else f"set the environment variable {variable}")
        super().__init__(f"provider {provider!r} needs a key: {where}")
        self.provider = provider
        self.variable = variable


class ValidationError(KlingError):
    """A request (or document) breaks the contract. Carries every problem at once."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem], *, subject: str = "request") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.subject = subject
        lines = [str(p) for p in self.problems] or ["invalid"]
        if len(lines) == 1:
            text = lines[0]
        else:
            text = f"{len(lines)} problems with the {subject}:\n" + "\n".join(
                f"  - {line}" for line in lines
            )
        super().__init__(text)

    @classmethod
    def single(cls, path: str, message: str, *, subject: str = "request") -> ValidationError:
        return cls([Problem(path, message)], subject=subject)


class UnsupportedError(ValidationError):
    """The chosen provider cannot serve this request (raised before any network call)."""

    def __init__(self, provider: str, problems: Iterable[Problem]) -> None:
        problems = tuple(problems)
        self.provider = provider
        super().__init__(
            [Problem(p.path, f"{p.message} (unsupported by provider {provider!r})") for p in problems]
        )


class UnsafeMediaError(KlingError):
    """Media refused for safety: wrong container, playlist in disguise, private URL, too big."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


# --- the remote side (exit code 1) ----------------------------------------------------


# ProviderError.code of a submit that certainly never reached the host (no connection was made):
# no job exists, so the next host of a fallback list may be tried. Here, not in kling_core.http,
# so the client can test for it without importing the HTTP machinery.
NOT_SENT = "not_sent"


class ProviderError(KlingError):
    """A host answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        job_id: str | None = None,
        details: Sequence[Problem] = (),
    ) -> None:
        bits = [f"{provider}: {message}"]
        meta = []
        if status_code is not None:
            meta.append(f"HTTP {status_code}")
        if code:
            meta.append(f"code {code}")
        if job_id:
            meta.append(f"job {job_id}")
        if meta:
            bits.append(f"({', '.join(meta)})")
        super().__init__(" ".join(bits))
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.retryable = retryable
        self.job_id = job_id
        self.details = tuple(details)
        self.reason = message
        self.client_key: str | None = None  # set when a submit failed after reaching the host
        # The status the host named in the body of a 2xx answer that carried an error (status_code
        # is None then: the HTTP status said success). A 5xx there means the host may have a job.
        self.body_status: int | None = None
        # The host refused because the account's jobs in flight are at its limit (Kling's 1303):
        # a definite refusal, no job made (ErrorRule.in_flight_limit).
        self.in_flight_limit = False


class AuthenticationError(ProviderError):
    """The host rejected the credentials (or the token was not valid at this time)."""


class InsufficientCreditsError(ProviderError):
    """The account has no credit left for this job."""


class RateLimitedError(ProviderError):
    """Too many requests; ``retry_after`` seconds is the host's hint where it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        kw.setdefault("retryable", True)
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ContentPolicyError(ProviderError):
    """The host refused the content (moderation / risk control)."""


class ProviderValidationError(ProviderError):
    """The host rejected the request's fields; ``details`` lists each field it named."""


class ProtocolError(ProviderError):
    """A host response did not have the documented shape."""


class SubmitUncertainError(ProviderError):
    """A submit may have reached the host but its answer was lost.

    Never resubmitted automatically: it carries what is needed to reconcile by hand
    (provider, client key, any job id seen).
    """

    def __init__(self, message: str, *, provider: str, client_key: str | None, **kw: object) -> None:
        hint = " ; it was NOT resubmitted"
        if client_key:
            hint += f"; reconcile with client key {client_key}"
        super().__init__(message + hint, provider=provider, **kw)  # type: ignore[arg-type]
        self.client_key = client_key


class JobFailedError(KlingError):
    """The job reached the failed state on the host."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        job_id: str,
        code: str | None = None,
        retryable: bool = False,
        cause_type: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: job {job_id} failed: {message}")
        self.provider = provider
        self.job_id = job_id
        self.code = code
        self.retryable = retryable
        self.reason = message
        self.cause_type = cause_type


class JobCancelledError(KlingError):
    """The job was cancelled before it produced a result."""

    def __init__(self, *, provider: str, job_id: str) -> None:
        super().__init__(f"{provider}: job {job_id} was cancelled")
        self.provider = provider
        self.job_id = job_id


class JobTimeoutError(KlingError):
    """Waiting for a job passed its deadline (the job itself may still be running)."""

    def __init__(self, *, provider: str, job_id: str, waited: float) -> None:
        super().__init__(
            f"{provider}: job {job_id} did not finish within {seconds_text(waited)}; "
            f"it was not cancelled: pick it up with `kling status {provider} {job_id}`"
        )
        self.provider = provider
        self.job_id = job_id
        self.waited = waited


class ResultExpiredError(ProviderError):
    """The host no longer holds the result (404/410 after completion)."""


class MediaError(KlingError):
    """Local media processing failed (ffmpeg crashed, timed out, or output unusable)."""


# A failed job's kind (JobError.kind) -> the error the client raises for it. One table, read by
# the client and by the contract suite's judge.
FAILURE_ERRORS: Mapping[str, type[KlingError]] = {
    "content_policy": ContentPolicyError,
    "validation": ProviderValidationError,
    "insufficient_credits": InsufficientCreditsError,
    "job_failed": JobFailedError,
    "timeout": JobFailedError,  # the host gave up on the job: it failed, it is not our deadline
    "provider": JobFailedError,
}


def failure_error(provider: str, job_id: str, message: str, *, kind: str, code: str | None,
                  retryable: bool) -> KlingError:
    """The canonical error for a job that ended failed on the host."""
    cls = FAILURE_ERRORS.get(kind, JobFailedError)
    if issubclass(cls, ProviderError):
        error: KlingError = cls(message, provider=provider, job_id=job_id, code=code, retryable=retryable)
        return error
    return JobFailedError(message, provider=provider, job_id=job_id, code=code, retryable=retryable, cause_type=kind)
