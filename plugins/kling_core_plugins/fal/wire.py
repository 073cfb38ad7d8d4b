"""fal's wire format: request bodies, response shapes, status names and error types, as data
plus pure functions (no I/O), so they can be property-tested against the host schemas.

Shapes follow providers.md §1.2–1.6 (fal docs, fal-js/fal_client sources).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kling_core.contract.models import EditRequest, OutputVideo
from kling_core.contract.status import JobError
from kling_core.errors import ContentPolicyError, Problem, ProviderValidationError
from kling_core.http import ErrorInfo, ErrorRule, ErrorTable, clip
from kling_core.http.bodies import fal_style_edit_body

QUEUE_STATES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
SUBMIT_URL_KEYS = ("status_url", "response_url", "cancel_url")
# PUT cancel_url answers: accepted (True), too late (False); NOT_FOUND is an error.
CANCEL_ACCEPTED = frozenset({"OK", "CANCELLATION_REQUESTED"})
CANCEL_TOO_LATE = frozenset({"ALREADY_COMPLETED"})

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

# error_type -> JobError.kind, for a job that finished with an error.
JOB_ERROR_KINDS: Mapping[str, str] = {
    "content_policy_violation": "content_policy",
    "request_timeout": "timeout",
    "startup_timeout": "timeout",
    "generation_timeout": "timeout",
}


def submit_body(request: EditRequest) -> dict[str, Any]:
    """The JSON body for fal's O1/O3 edit and reference endpoints.

    ``keep_audio`` is always explicit: fal's default differs between O1 (false) and O3 (true).
    Element names/descriptions have no fal field; references are positional (@Element1).
    """
    body = fal_style_edit_body(request)
    return body


def _str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def submit_fields(doc: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """(request_id, {status_url, response_url, cancel_url}); ValueError names what is missing."""
    request_id = _str(doc, "request_id")
    missing = [k for k in ("request_id", *SUBMIT_URL_KEYS) if _str(doc, k) is None]
    if missing or request_id is None:
        raise ValueError(f"submit response lacks {', '.join(missing)}")
    return request_id, {k.removesuffix("_url"): str(doc[k]) for k in SUBMIT_URL_KEYS}


def log_lines(doc: Mapping[str, Any]) -> tuple[str, ...]:
    logs = doc.get("logs")
    if not isinstance(logs, list):
        return ()
    out = []
    for entry in logs:
        if isinstance(entry, Mapping) and isinstance(entry.get("message"), str):
            out.append(clip(entry["message"], 300))
    return tuple(out)


def completed_error(doc: Mapping[str, Any]) -> JobError | None:
    """A COMPLETED status that carries ``error``/``error_type`` is a failure."""
    error, error_type = doc.get("error"), doc.get("error_type")
    if not error and not error_type:
        return None
    code = error_type if isinstance(error_type, str) else None
    message = clip(error if isinstance(error, str) else str(error or code or "the job failed"))
    kind = JOB_ERROR_KINDS.get(code or "", "job_failed")
    rule = ERROR_TABLE.by_code.get(code) if code is not None else None
    retryable = rule.retryable if rule is not None else False
    return JobError(message=message, code=code, retryable=retryable, kind=kind)  # type: ignore[arg-type]


def detail_problems(detail: Any) -> list[Problem]:
    """fal's ``detail`` list (loc/msg/type) as problems; ``loc`` drops the leading 'body'."""
    out: list[Problem] = []
    if not isinstance(detail, Sequence) or isinstance(detail, str):
        return out
    for item in detail:
        if not isinstance(item, Mapping):
            continue
        loc = item.get("loc")
        parts = [str(p) for p in loc] if isinstance(loc, list) else []
        if parts and parts[0] == "body":
            parts = parts[1:]
        path = ".".join(parts)
        msg = item.get("msg")
        out.append(Problem(path, clip(msg if isinstance(msg, str) else str(item.get("type", "invalid")), 300)))
    return out


def first_type(detail: Any) -> str | None:
    if isinstance(detail, list):
        for item in detail:
            if isinstance(item, Mapping) and isinstance(item.get("type"), str):
                return str(item["type"])
    return None


def error_info(body: Any, headers: Mapping[str, str], text: str) -> ErrorInfo:
    """What fal said: a ``detail`` list (model errors) or string + ``error_type`` (request errors)."""
    code = headers.get("x-fal-error-type")
    message = ""
    problems: list[Problem] = []
    if isinstance(body, Mapping):
        detail = body.get("detail")
        if isinstance(body.get("error_type"), str):
            code = body["error_type"]
        if isinstance(detail, str):
            message = detail
        elif isinstance(detail, list):
            problems = detail_problems(detail)
            code = code or first_type(detail)
            message = "; ".join(str(p) for p in problems) or "the request was rejected"
        elif isinstance(body.get("error"), str):
            message = body["error"]
    elif text.strip() and "<html" not in text.lower():
        message = text
    retryable_hint = headers.get("x-fal-retryable")
    retryable = None
    if retryable_hint is not None:
        retryable = retryable_hint.strip().lower() == "true"
    return ErrorInfo(message=clip(message), code=code, details=tuple(problems), retryable=retryable)


def result_video(doc: Mapping[str, Any]) -> OutputVideo:
    """``{"video": File}`` → OutputVideo; ValueError when the shape is wrong."""
    video = doc.get("video")
    if not isinstance(video, Mapping) or not isinstance(video.get("url"), str) or not video["url"]:
        raise ValueError("result lacks video.url")
    size = video.get("file_size")
    return OutputVideo(
        url=video["url"],
        content_type=video["content_type"] if isinstance(video.get("content_type"), str) else "video/mp4",
        file_name=video["file_name"] if isinstance(video.get("file_name"), str) else None,
        file_size=size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= 2**63 else None,
    )
