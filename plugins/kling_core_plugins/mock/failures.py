"""Scripted failures, as data: the phase each one strikes in and what it produces.

``submit`` failures raise from ``submit()`` (nothing is queued, as when a host answers the
POST with an error); ``status`` failures let the job be created and then fail it (or, for
``timeout``, never finish it) so the caller's polling and deadline logic is exercised.
"""

from __future__ import annotations

from typing import Literal

import attrs

from kling_core.sdk import (
    InsufficientCreditsError,
    JobError,
    ProviderError,
    RateLimitedError,
)


@attrs.frozen
class Failure:
    phase: Literal["submit", "status"]
    description: str
    job_error: JobError | None = None  # for status-phase failures that end in Failed


FAILURES: dict[str, Failure] = {
    "rate_limited": Failure("submit", "submit raises RateLimitedError (HTTP 429, retry_after from the option)"),
    "insufficient_credits": Failure("submit", "submit raises InsufficientCreditsError (HTTP 402)"),
    "server_error": Failure("submit", "submit raises ProviderError (HTTP 500, retryable)"),
    "timeout": Failure("status", "the job is accepted and stays running forever; the caller's deadline fires"),
    "content_policy": Failure(
        "status",
        "the job fails: Failed(kind content_policy)",
        JobError(
            message="the request was flagged by content moderation (scripted by the mock)",
            code="content_policy_violation",
            retryable=False,
            kind="content_policy",
        ),
    ),
    "completed_with_error": Failure(
        "status",
        "the job completes with an error result: Failed(kind validation)",
        JobError(
            message="elementReferList: size must be between 1 and 3",
            code="validation_error",
            retryable=False,
            kind="validation",
        ),
    ),
}


def submit_error(name: str, *, provider: str, retry_after: float) -> ProviderError:
    """The error a submit-phase failure raises."""
    if name == "rate_limited":
        return RateLimitedError(
            "rate limited (scripted by the mock)",
            provider=provider,
            status_code=429,
            code="rate_limited",
            retry_after=retry_after,
        )
    if name == "insufficient_credits":
        return InsufficientCreditsError(
            "insufficient credits (scripted by the mock)",
            provider=provider,
            status_code=402,
            code="insufficient_credits",
        )
    if name == "server_error":
        return ProviderError(
            "internal server error (scripted by the mock)",
            provider=provider,
            status_code=500,
            code="server_error",
            retryable=True,
        )
    raise ValueError(f"{name!r} is not a submit-phase failure")
