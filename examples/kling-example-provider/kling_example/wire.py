"""The Example Video API's wire format, as data (see README.md, "Wire format")."""

from __future__ import annotations

from collections.abc import Mapping

from kling_core.sdk import (
    AuthenticationError,
    CancelShape,
    ContentPolicyError,
    ErrorRule,
    ErrorShape,
    ErrorTable,
    FailureKind,
    HostSpec,
    HostState,
    InsufficientCreditsError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ResultShape,
    Routes,
    StatusShape,
    SubmitShape,
)

DEFAULT_BASE_URL = "https://api.example-video.test"
EDITS_PATH = "/v1/edits"

# Canonical model / quality names → the host's.
MODELS: Mapping[str, str] = {"kling-o1": "o1", "kling-o3": "o3"}
QUALITIES: Mapping[str, str] = {"std": "standard", "pro": "high"}

# The host's edit states → what they mean. "completed": the output is in the same document.
STATES: Mapping[str, HostState] = {
    "queued": "queued",
    "processing": "running",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
}

# Codes of a failed edit (in the Edit document's `error`) → the canonical failure kind.
FAILURE_KINDS: Mapping[str, FailureKind] = {
    "content_rejected": "content_policy",
    "source_unreadable": "validation",
    "insufficient_credits": "insufficient_credits",
}

# Where everything is in the Edit document, and the routes of each step.
SPEC = HostSpec(
    routes=Routes(submit=EDITS_PATH, status=f"{EDITS_PATH}/{{job_id}}", cancel=f"{EDITS_PATH}/{{job_id}}/cancel"),
    submit=SubmitShape(job_id="id"),
    status=StatusShape(
        state="status", states=STATES, position="queue_position", progress="progress",
        error_message=("error.message",), error_code=("error.code",), failure_kinds=FAILURE_KINDS,
        retryable_codes=frozenset({"internal"}), default_failure="the edit failed",
    ),
    result=ResultShape(url=("output.url",), file_size="output.size_bytes", content_type="output.content_type"),
    cancel=CancelShape(too_late_statuses=frozenset({409})),  # 409 not_cancellable: it already finished
    errors=ErrorShape(message=("error.message",), code=("error.code",)),
)

# Error answers: {"error": {"code": ..., "message": ...}}; the code decides first.
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
