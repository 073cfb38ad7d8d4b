"""fal's wire format as data: status names, error types and request options.

Shapes follow providers.md §1.2–1.6 (fal docs, fal-js/fal_client sources).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kling_core.sdk import (
    ContentPolicyError,
    ErrorRule,
    ErrorTable,
    FailureKind,
    HostState,
    ProviderValidationError,
)

QUEUE_STATES: Mapping[str, HostState] = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed"}

# fal's request-error types (request-errors docs) and model-error types that matter to us.
ERROR_TABLE = ErrorTable(
    by_code={
        "request_timeout": ErrorRule(retryable=True, message="the request timed out on fal"),
        "startup_timeout": ErrorRule(retryable=True, message="the model runner did not start in time"),
        "runner_scheduling_failure": ErrorRule(retryable=True, message="fal could not schedule a runner"),
        "runner_connection_timeout": ErrorRule(retryable=True),
        "runner_disconnected": ErrorRule(retryable=True),
        "runner_connection_refused": ErrorRule(retryable=True),
        "runner_connection_error": ErrorRule(retryable=True),
        "runner_incomplete_response": ErrorRule(retryable=True),
        "runner_server_error": ErrorRule(retryable=True),
        "internal_error": ErrorRule(retryable=True),
        "client_disconnected": ErrorRule(retryable=False),
        "client_cancelled": ErrorRule(retryable=False),
        "bad_request": ErrorRule(ProviderValidationError, False),
        "content_policy_violation": ErrorRule(ContentPolicyError, False, "fal's content checker refused the input"),
    },
)
RETRYABLE_CODES = frozenset(code for code, rule in ERROR_TABLE.by_code.items() if rule.retryable)

# error_type -> JobError.kind, for a job that finished with an error.
JOB_ERROR_KINDS: Mapping[str, FailureKind] = {
    "content_policy_violation": "content_policy",
    "request_timeout": "timeout",
    "startup_timeout": "timeout",
    "generation_timeout": "timeout",
}


def option_problem(key: str, value: object, known: Mapping[str, str], priorities: Sequence[str]) -> str | None:
    """Why a request option is not one fal takes, or None."""
    if key not in known:
        return f"unknown option for fal (known: {', '.join(known)})"
    if key == "request_timeout" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 1):
        return "must be a number of seconds greater than 1"
    if key == "priority" and value not in priorities:
        return f"must be one of {', '.join(priorities)}"
    return None
