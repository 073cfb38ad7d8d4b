"""The Example Video API's wire format, as data (see README.md, "Wire format")."""

from __future__ import annotations

from collections.abc import Mapping

from kling_core.contract.status import JobError
from kling_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    InsufficientCreditsError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
)
from kling_core.http import ErrorRule, ErrorTable

DEFAULT_BASE_URL = "https://api.example-video.test"
EDITS_PATH = "/v1/edits"

# Canonical model / quality names → the host's.
MODELS: Mapping[str, str] = {"kling-o1": "o1", "kling-o3": "o3"}
QUALITIES: Mapping[str, str] = {"std": "standard", "pro": "high"}

# The host's job states → canonical states.
STATES: Mapping[str, str] = {
    "queued": "queued",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "cancelled",
}

# Error responses: {"error": {"code": ..., "message": ...}}; the code decides first.
ERRORS = ErrorTable(
    by_code={
        "invalid_api_key": ErrorRule(AuthenticationError, False),
        "insufficient_credits": ErrorRule(InsufficientCreditsError, False),
        "content_rejected": ErrorRule(ContentPolicyError, False),
        "invalid_request": ErrorRule(ProviderValidationError, False),
        "rate_limited": ErrorRule(RateLimitedError, True),
        "overloaded": ErrorRule(ProviderError, True),
        "not_cancellable": ErrorRule(ProviderError, False),
    },
)

# Codes of a failed job (in the status document) → the canonical failure kind.
FAILURE_KINDS: Mapping[str, str] = {
    "content_rejected": "content_policy",
    "source_unreadable": "validation",
    "insufficient_credits": "insufficient_credits",
}


def job_error(code: str | None, message: str) -> JobError:
    kind = FAILURE_KINDS.get(code or "", "job_failed")
    return JobError(message=message, code=code, retryable=code == "internal", kind=kind)  # type: ignore[arg-type]
