"""Unifically's unified task API (``/v1/tasks``) as data and pure functions.

Shapes follow docs.unifically.com (api-reference/v1-tasks, callbacks, error-handling and the
``kuaishou/kling-o1-video-edit`` model page). Where the docs are silent (the failed-poll shape,
an insufficient-balance status, the dry-run answer) the tables below say what is inferred.
Nothing here does I/O, so the contract kit can property-test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kling_core.contract.models import EditRequest, EditResult, Element, OutputVideo, Timings
from kling_core.contract.prompt import render_prompt, spell_snake
from kling_core.contract.status import Failed, JobError, JobStatus, Queued, Running, Succeeded
from kling_core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    Problem,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    UnsupportedError,
)
from kling_core.http.base import clip
from kling_core.http.errormap import ErrorRule, ErrorTable

PROVIDER = "unifically"
DEFAULT_BASE_URL = "https://api.unifically.com"
TASKS_PATH = "/v1/tasks"

# Canonical model -> Unifically model id. O3 (`kuaishou/kling-3.0-omni-video-edit`) is only
# known from a third-party client config, so it is not offered until a recording confirms it.
MODEL_IDS: Mapping[str, str] = {"kling-o1": "kuaishou/kling-o1-video-edit"}

# The host's default `video_mode` is "reference" (a style/motion guide), which is not an edit:
# the mode is therefore always sent. "transform" = Kling's refer_type=base [INF, providers.md §3.2].
VIDEO_MODES: Mapping[str, str] = {"edit": "transform", "reference": "reference"}

# Host task status -> canonical state.
STATES: Mapping[str, str] = {
    "pending": "queued",
    "processing": "running",
    "completed": "succeeded",
    "failed": "failed",
}

ELEMENT_NAME_MAX = 15
ELEMENT_DESCRIPTION_MAX = 100
ELEMENT_IMAGES = (1, 4)  # frontal + reference images per element
REFERENCE_POOL = 4  # image_urls and elements share one pool


# Documented (HTTP status, body `data.code`) pairs [DOC] https://docs.unifically.com/api-reference/error-handling.
# Keyed by the pair, not by the code alone: the body code is only trusted when the HTTP status
# agrees with it (legacy routes put codes in bodies freely). Statuses without a documented
# code fall back to `by_status`, then to the generic HTTP meaning.
_GENERATION_FAILED = ErrorRule(ProviderError, False, "task generation failed")
_AUTH_FAILED = ErrorRule(AuthenticationError, False, "invalid or missing API key (check UNIFICALLY_API_KEY)")
_VALIDATION = ErrorRule(ProviderValidationError, False, "invalid parameters")
_RATE_LIMITED = ErrorRule(RateLimitedError, True, "rate limit exceeded")
_INTERNAL = ErrorRule(ProviderError, True, "internal error")

ERRORS = ErrorTable(
    by_status_code={
        (400, "generation_failed"): _GENERATION_FAILED,
        (401, "authentication_failed"): _AUTH_FAILED,
        (422, "validation_error"): _VALIDATION,
        (429, "rate_limit_exceeded"): _RATE_LIMITED,
        (500, "internal_error"): _INTERNAL,
    },
    by_status={
        400: _GENERATION_FAILED,
        401: _AUTH_FAILED,
        402: ErrorRule(InsufficientCreditsError, False, "insufficient balance"),  # [INF] not documented
        422: _VALIDATION,
        429: _RATE_LIMITED,
        500: _INTERNAL,
    },
)
# Body codes the docs define, for job failures reported inside a task's `data.error`.
VALIDATION_CODES = frozenset({"validation_error"})

MESSAGE_MAX = 500  # host messages are echoed into errors, bounded


# --- request ---------------------------------------------------------------------------


def element_name(element: Element, index: int) -> str:
    """The element's name, or a deterministic valid one (``element1``…)."""
    return element.name if element.name is not None else f"element{index + 1}"


def element_description(element: Element, index: int) -> str:
    return element.description if element.description is not None else f"reference element {index + 1}"


def element_problems(request: EditRequest) -> list[Problem]:
    """What the host would refuse about elements and the reference pool.

    The core reports the same limits earlier from the capability data; this guard keeps a
    direct ``build_task`` call from sending a body the host would refuse.
    """
    problems: list[Problem] = []
    for i, el in enumerate(request.elements):
        name, desc = element_name(el, i), element_description(el, i)
        if len(name) > ELEMENT_NAME_MAX:
            problems.append(
                Problem(f"elements[{i}].name", f"{len(name)} characters, at most {ELEMENT_NAME_MAX}")
            )
        if len(desc) > ELEMENT_DESCRIPTION_MAX:
            problems.append(
                Problem(
                    f"elements[{i}].description",
                    f"{len(desc)} characters, at most {ELEMENT_DESCRIPTION_MAX}",
                )
            )
        n = 1 + len(el.reference_images)
        lo, hi = ELEMENT_IMAGES
        if not lo <= n <= hi:
            problems.append(Problem(f"elements[{i}].reference_images", f"{n} images in all, {lo}–{hi} accepted"))
    n_refs = len(request.images) + len(request.elements)
    if n_refs > REFERENCE_POOL:
        problems.append(
            Problem("images", f"{n_refs} images and elements together, at most {REFERENCE_POOL}")
        )
    return problems


def build_input(request: EditRequest) -> dict[str, Any]:
    """The ``input`` object of a task for this edit."""
    problems = element_problems(request)
    if request.model not in MODEL_IDS:
        problems.append(Problem("model", f"{request.model!r} is not offered (offers: {', '.join(MODEL_IDS)})"))
    if problems:
        raise UnsupportedError(PROVIDER, problems)
    body: dict[str, Any] = {
        "video_url": request.video,
        "prompt": render_prompt(request.prompt, spell_snake),
        "video_mode": VIDEO_MODES[request.edit_mode],
        "keep_audio": request.keep_audio,  # explicit: the host's default may change
        "mode": request.quality,
    }
    if request.aspect_ratio is not None:
        body["aspect_ratio"] = request.aspect_ratio
    if request.images:
        body["image_urls"] = list(request.images)
    if request.elements:
        body["elements"] = [
            {
                "name": element_name(el, i),
                "description": element_description(el, i),
                "image_urls": [el.frontal_image, *el.reference_images],
            }
            for i, el in enumerate(request.elements)
        ]
    return body


def build_task(request: EditRequest, *, dry_run: bool = False) -> dict[str, Any]:
    """The full ``POST /v1/tasks`` body."""
    task_input = build_input(request)  # checks the model first
    body: dict[str, Any] = {"model": MODEL_IDS[request.model], "input": task_input}
    if request.webhook_url is not None:
        body["callback_url"] = request.webhook_url
    if dry_run:
        body["dry_run"] = True
    return body


# --- responses -------------------------------------------------------------------------


def _protocol(message: str, *, job_id: str | None = None, status_code: int | None = None) -> ProtocolError:
    return ProtocolError(message, provider=PROVIDER, job_id=job_id, status_code=status_code)


def envelope_data(body: object, *, what: str, job_id: str | None = None) -> Mapping[str, Any]:
    """``data`` of a ``{"code", "success", "data"}`` envelope, checked."""
    if not isinstance(body, Mapping):
        raise _protocol(f"{what}: expected a JSON object", job_id=job_id)
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise _protocol(f"{what}: missing object 'data'", job_id=job_id)
    return data


def parse_task_id(body: object) -> str:
    data = envelope_data(body, what="submit response")
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id.strip():
        raise _protocol("submit response: missing string 'data.task_id'")
    return task_id


def _text(value: object) -> str | None:
    # Host text ends up in exceptions and logs: scrubbed of registered secrets, bounded.
    if isinstance(value, str) and value.strip():
        return clip(value, MESSAGE_MAX)
    return None


def failure_of(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """Message and code of a failed task: ``error.{message,code}`` or ``error_message`` [INF]."""
    error = data.get("error")
    message = code = None
    if isinstance(error, Mapping):
        message, code = _text(error.get("message")), _text(error.get("code"))
    elif isinstance(error, str):
        message = _text(error)
    message = message or _text(data.get("error_message")) or "the host reported the task as failed"
    return message, code


def _job_error(message: str, code: str | None) -> JobError:
    kind: Any = "validation" if code in VALIDATION_CODES else "job_failed"
    return JobError(message=message, code=code, retryable=False, kind=kind)


def status_from_data(
    data: Mapping[str, Any],
    *,
    job_id: str,
    model: str,
    submitted_at: float | None,
    video_url: object,
) -> JobStatus:
    status = data.get("status")
    state = STATES.get(status) if isinstance(status, str) else None
    if state is None:
        raise _protocol(f"unknown task status {status!r} (known: {', '.join(STATES)})", job_id=job_id)
    if state == "queued":
        return Queued(job_id=job_id, provider=PROVIDER)
    if state == "running":
        return Running(job_id=job_id, provider=PROVIDER)
    if state == "failed":
        message, code = failure_of(data)
        return Failed(job_id=job_id, provider=PROVIDER, error=_job_error(message, code))
    if not isinstance(video_url, str) or not video_url.startswith(("https://", "http://")):
        raise _protocol("completed task without an http(s) video URL", job_id=job_id)
    result = EditResult(
        video=OutputVideo(url=video_url),
        job_id=job_id,
        provider=PROVIDER,
        model=model,
        timings=Timings(submitted_at=submitted_at),
    )
    return Succeeded(job_id=job_id, provider=PROVIDER, result=result)


def parse_task(body: object, *, job_id: str, model: str, submitted_at: float | None = None) -> JobStatus:
    """A ``GET /v1/tasks/{id}`` body; the result is at ``data.output.video_url``."""
    data = envelope_data(body, what="task status", job_id=job_id)
    output = data.get("output")
    url = output.get("video_url") if isinstance(output, Mapping) else None
    return status_from_data(data, job_id=job_id, model=model, submitted_at=submitted_at, video_url=url)


def parse_callback(body: object, *, model: str = "kling-o1") -> JobStatus:
    """A callback POST body: ``task_id``, ``status``, and ``data.video_url`` or ``error_message``.

    Callbacks are unsigned [DOC]: treat one as a hint to poll, not as proof of the result.
    """
    if not isinstance(body, Mapping):
        raise _protocol("callback: expected a JSON object")
    task_id = body.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise _protocol("callback: missing string 'task_id'")
    data = body.get("data")
    url = data.get("video_url") if isinstance(data, Mapping) else None
    return status_from_data(body, job_id=task_id, model=model, submitted_at=None, video_url=url)


# --- errors ----------------------------------------------------------------------------


def error_fields(body: object) -> tuple[str | None, str | None, int | None]:
    """Message, string code and numeric body code of an error body, where present."""
    if not isinstance(body, Mapping):
        return None, None, None
    data = body.get("data")
    message = code = None
    if isinstance(data, Mapping):
        message, code = _text(data.get("message")), _text(data.get("code"))
        if message is None:
            message = failure_of(data)[0] if ("error" in data or "error_message" in data) else None
    message = message or _text(body.get("message")) or _text(body.get("error"))
    if code is None and isinstance(body.get("code"), str):
        code = _text(body.get("code"))
    number = body.get("code")
    return message, code, number if isinstance(number, int) and not isinstance(number, bool) else None


def error_from(
    http_status: int,
    body: object,
    *,
    job_id: str | None = None,
    retry_after: float | None = None,
    text: str | None = None,
) -> ProviderError:
    """The canonical error for an error response (status, parsed JSON body or None)."""
    message, code, number = error_fields(body)
    # A 2xx carrying an error body: the body's numeric code is the only status there is.
    status = http_status if http_status >= 400 or number is None else number
    rule = ERRORS.lookup(status, code)
    if message is None and text and not isinstance(body, Mapping):
        message = clip(text, 200) if text.strip() else None
    meaning = rule.message or f"HTTP error {status}"
    reason = f"{meaning}: {message}" if message else meaning
    ok = 200 <= http_status < 300
    if ok:
        reason += f" (in an HTTP {http_status} answer)"
    kw: dict[str, Any] = {
        "provider": PROVIDER,
        # A 2xx that carries an error has no HTTP error status to report.
        "status_code": None if ok else http_status,
        "code": code or (str(number) if number is not None else None),
        "retryable": rule.retryable,
        "job_id": job_id,
        "details": (Problem("", message),) if message and issubclass(rule.error, ProviderValidationError) else (),
    }
    if issubclass(rule.error, RateLimitedError):
        return rule.error(reason, retry_after=retry_after, **kw)
    return rule.error(reason, **kw)
