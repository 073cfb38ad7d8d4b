"""Kling's own omni-video API as data and pure functions.

Shapes follow Kling's developer docs (apiReference/model/OmniVideo, commonInfo, callback
protocol), summarized in providers.md §4. Nothing here does I/O, so the contract kit can
property-test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kling_core.contract.models import Cost, EditRequest, EditResult, OutputVideo, Timings
from kling_core.contract.prompt import render_prompt, spell_triple_angle
from kling_core.contract.status import Failed, JobError, JobStatus, Queued, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    InsufficientCreditsError,
    Problem,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
)
from kling_core.http.base import clip
from kling_core.http.errormap import ErrorRule, ErrorTable

PROVIDER = "kling"
DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
TASKS_PATH = "/v1/videos/omni-video"
DOCS_URL = "https://app.klingai.com/global/dev/document-api/apiReference/model/OmniVideo"

MODEL_NAMES: Mapping[str, str] = {"kling-o1": "kling-video-o1", "kling-o3": "kling-v3-omni"}
REFER_TYPES: Mapping[str, str] = {"edit": "base", "reference": "feature"}
STATES: Mapping[str, str] = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "succeeded",
    "failed": "failed",
}

CLOCK_HINT = (
    "the token's validity window did not match the host's clock: check this machine's system "
    "clock (enable NTP time sync) and retry"
)


# Service code -> rule [DOC] commonInfo error-code table (providers.md §4.5; the HTTP status the
# docs pair with each code is in the comment). The code decides, not the HTTP status: 429
# carries credit (1102) and account (1100/1101/1304) problems as well as rate limits, so a 429
# alone is not a reason to retry.
_AUTH = AuthenticationError
_BY_CODE: Mapping[int, ErrorRule] = {
    1000: ErrorRule(_AUTH, False, "authentication failed: check KLING_ACCESS_KEY and KLING_SECRET_KEY"),  # 401
    1001: ErrorRule(_AUTH, False, "authorization header is empty"),  # 401
    1002: ErrorRule(_AUTH, False, "token is invalid: check KLING_ACCESS_KEY and KLING_SECRET_KEY"),  # 401
    1003: ErrorRule(_AUTH, False, f"token not yet valid: {CLOCK_HINT}"),  # 401
    1004: ErrorRule(_AUTH, False, f"token expired: {CLOCK_HINT}"),  # 401
    1100: ErrorRule(ProviderError, False, "account exception: check the account on Kling's developer console"),  # 429
    1101: ErrorRule(InsufficientCreditsError, False, "account in arrears (postpaid): settle the bill"),  # 429
    1102: ErrorRule(InsufficientCreditsError, False, "resource pack depleted or expired: buy or renew one"),  # 429
    1103: ErrorRule(_AUTH, False, "this key may not use the requested API or model"),  # 403
    1200: ErrorRule(ProviderValidationError, False, "invalid request parameters"),  # 400
    1201: ErrorRule(ProviderValidationError, False, "invalid parameter key or value"),  # 400
    1202: ErrorRule(ProviderError, False, "invalid request method"),  # 404
    1203: ErrorRule(ProviderError, False, "requested resource does not exist"),  # 404
    1300: ErrorRule(ContentPolicyError, False, "refused by platform policy"),  # 400
    1301: ErrorRule(ContentPolicyError, False, "refused by content security policy"),  # 400
    1302: ErrorRule(RateLimitedError, True, "rate limit exceeded"),  # 429
    1303: ErrorRule(RateLimitedError, True, "concurrency or QPS over the resource pack limit"),  # 429
    1304: ErrorRule(_AUTH, False, "this machine's IP is not on the account's IP whitelist"),  # 429
    5000: ErrorRule(ProviderError, True, "internal server error"),  # 500
    5001: ErrorRule(ProviderError, True, "service temporarily unavailable (maintenance)"),  # 503
    5002: ErrorRule(ProviderError, True, "internal timeout (backlog)"),  # 504
}
ERRORS = ErrorTable(
    by_code={str(code): rule for code, rule in _BY_CODE.items()},
    by_status={
        # An undocumented code on a 429 is not retried: on this host 429 also means "out of
        # credit" or "account problem", and retrying those only wastes the poll budget.
        429: ErrorRule(ProviderError, False, "request refused (HTTP 429 with an undocumented code)"),
        400: ErrorRule(ProviderValidationError, False, "bad request"),
    },
)

# Codes that mean the token itself was refused at this moment: mint a fresh one next time.
TOKEN_CODES = frozenset({"1003", "1004"})
# The code that means "no such task": on a reconcile look-up it means the submit never landed.
NOT_FOUND_CODE = 1203

MESSAGE_MAX = 500


# --- request ---------------------------------------------------------------------------


def build_task(request: EditRequest) -> dict[str, Any]:
    """The ``POST /v1/videos/omni-video`` body for this edit."""
    body: dict[str, Any] = {
        "model_name": MODEL_NAMES[request.model],
        "prompt": render_prompt(request.prompt, spell_triple_angle),
        "video_list": [
            {
                "video_url": request.video,
                "refer_type": REFER_TYPES[request.edit_mode],
                "keep_original_sound": "yes" if request.keep_audio else "no",
            }
        ],
        "mode": request.quality,
    }
    if request.images:
        body["image_list"] = [{"image_url": url} for url in request.images]
    if request.webhook_url is not None:
        body["callback_url"] = request.webhook_url
    if request.client_key is not None:
        # Unique per account on Kling's side: a lost submit answer can be looked up by it.
        body["external_task_id"] = request.client_key
    return body


# --- responses -------------------------------------------------------------------------


def _protocol(message: str, *, job_id: str | None = None) -> ProtocolError:
    return ProtocolError(message, provider=PROVIDER, job_id=job_id)


def _text(value: object, limit: int = MESSAGE_MAX) -> str | None:
    # Host text ends up in exceptions and logs: scrubbed of registered secrets, bounded.
    if isinstance(value, str) and value.strip():
        return clip(value, limit)
    return None


def body_code(body: object) -> int | None:
    """The envelope's service ``code`` (0 = success), if it is an integer."""
    if isinstance(body, Mapping):
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def is_error_body(body: object) -> bool:
    """A 2xx body whose service code says it failed (Kling signals errors in the body too)."""
    code = body_code(body)
    return code is not None and code != 0


def envelope_data(body: object, *, what: str, job_id: str | None = None) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _protocol(f"{what}: expected a JSON object", job_id=job_id)
    if body_code(body) != 0:
        raise _protocol(f"{what}: expected service code 0, got {body.get('code')!r}", job_id=job_id)
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise _protocol(f"{what}: missing object 'data'", job_id=job_id)
    return data


def task_id_of(data: Mapping[str, Any], *, what: str) -> str:
    task_id = data.get("task_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise _protocol(f"{what}: missing 'data.task_id'")
    return task_id


def external_id_of(data: Mapping[str, Any]) -> str | None:
    info = data.get("task_info")
    if isinstance(info, Mapping):
        return _text(info.get("external_task_id"), 128)
    return None


def _seconds(ms: object) -> float | None:
    if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
        return float(ms) / 1000.0
    return None


def _number(value: object) -> float | None:
    """Kling sends some numbers as strings (``final_unit_deduction``, ``duration``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def parse_task(body: object, *, job_id: str, model: str, submitted_at: float | None = None) -> JobStatus:
    """A ``GET /v1/videos/omni-video/{id}`` body (or a callback's ``data``-less body)."""
    data = envelope_data(body, what="task status", job_id=job_id)
    return status_from_data(data, job_id=job_id, model=model, submitted_at=submitted_at)


def parse_callback(body: object, *, model: str = "kling-o1") -> JobStatus:
    """A callback POST body: the task document itself (``task_id``, ``task_status``, ...).

    Callbacks are unsigned and sent on every status change: treat one as a hint to poll.
    """
    if not isinstance(body, Mapping):
        raise _protocol("callback: expected a JSON object")
    return status_from_data(body, job_id=task_id_of(body, what="callback"), model=model)


def status_from_data(
    data: Mapping[str, Any], *, job_id: str, model: str, submitted_at: float | None = None
) -> JobStatus:
    status = data.get("task_status")
    state = STATES.get(status) if isinstance(status, str) else None
    if state is None:
        raise _protocol(f"unknown task_status {status!r} (known: {', '.join(STATES)})", job_id=job_id)
    if state == "queued":
        return Queued(job_id=job_id, provider=PROVIDER)
    if state == "running":
        return Running(job_id=job_id, provider=PROVIDER)
    if state == "failed":
        message = _text(data.get("task_status_msg")) or "the host reported the task as failed"
        return Failed(job_id=job_id, provider=PROVIDER, error=JobError(message=message, kind="job_failed"))
    result = data.get("task_result")
    videos = result.get("videos") if isinstance(result, Mapping) else None
    first = videos[0] if isinstance(videos, list) and videos else None
    url = first.get("url") if isinstance(first, Mapping) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _protocol("succeeded task without an http(s) url in task_result.videos[0]", job_id=job_id)
    credits = _number(data.get("final_unit_deduction"))
    duration = _number(first.get("duration")) if isinstance(first, Mapping) else None
    started = _seconds(data.get("created_at"))
    output = EditResult(
        video=OutputVideo(url=url),
        job_id=job_id,
        provider=PROVIDER,
        model=model,
        timings=Timings(
            submitted_at=submitted_at if submitted_at is not None else started,
            completed_at=_seconds(data.get("updated_at")),
        ),
        cost=Cost(credits=credits) if credits is not None else None,
        report={"duration": duration} if duration is not None else None,
    )
    return Succeeded(job_id=job_id, provider=PROVIDER, result=output)


# --- errors ----------------------------------------------------------------------------


def error_from(
    http_status: int,
    body: object,
    *,
    job_id: str | None = None,
    retry_after: float | None = None,
    text: str | None = None,
) -> ProviderError:
    """The canonical error for a response with a non-zero service code or a non-2xx status."""
    number = body_code(body)
    code = str(number) if number is not None else None
    message = _text(body.get("message")) if isinstance(body, Mapping) else None
    if message is None and text and not isinstance(body, Mapping):
        message = clip(text, 200) if text.strip() else None
    request_id = _text(body.get("request_id"), 100) if isinstance(body, Mapping) else None
    rule = ERRORS.lookup(http_status, code)
    meaning = rule.message or f"HTTP error {http_status}"
    reason = f"{meaning}: {message}" if message and message.lower() not in meaning.lower() else meaning
    if request_id:
        reason += f" [request_id {request_id}]"
    if 200 <= http_status < 300:
        reason += f" (in an HTTP {http_status} answer)"
    details = (Problem("", message),) if message and issubclass(rule.error, ProviderValidationError) else ()
    kw: dict[str, Any] = {
        "provider": PROVIDER,
        # A 2xx that carries an error code has no HTTP error status to report.
        "status_code": None if 200 <= http_status < 300 else http_status,
        "code": code,
        "retryable": rule.retryable,
        "job_id": job_id,
        "details": details,
    }
    if issubclass(rule.error, RateLimitedError):
        return rule.error(reason, retry_after=retry_after, **kw)
    return rule.error(reason, **kw)
