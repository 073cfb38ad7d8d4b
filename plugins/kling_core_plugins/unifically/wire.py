"""Unifically's unified task API (``/v1/tasks``) as data, plus the request body.

Shapes follow docs.unifically.com (api-reference/v1-tasks, callbacks, error-handling and the
``kuaishou/kling-o1-video-edit`` model page). Where the docs are silent (the failed-poll shape,
an insufficient-balance status, the dry-run answer) the tables below say what is inferred.
Nothing here does I/O, so the contract kit can property-test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kling_core.sdk import (
    AuthenticationError,
    BodyError,
    CallbackShape,
    EditRequest,
    Element,
    ErrorRule,
    ErrorShape,
    ErrorTable,
    HostSpec,
    HostState,
    InsufficientCreditsError,
    ModelCapabilities,
    ProviderCapabilities,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ResultShape,
    Routes,
    StatusShape,
    SubmitShape,
    render_prompt,
    spell_snake,
)

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
STATES: Mapping[str, HostState] = {
    "pending": "queued",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
}

ELEMENT_NAME_MAX = 15
ELEMENT_DESCRIPTION_MAX = 100
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
CAPABILITIES = ProviderCapabilities(
    models=(
        ModelCapabilities(
            model="kling-o1",
            edit_modes=tuple(VIDEO_MODES),
            qualities=("std", "pro"),
            max_references=REFERENCE_POOL,
            max_images=4,
            max_elements=4,
            element_reference_images=(1, 3),  # + the frontal image = the host's 1–4 image_urls
            accepts_elements=True,
            accepts_aspect_ratio=True,  # documented input (16:9, 9:16, 1:1); sent only when given
            accepts_duration=False,  # "output length follows input length"
            element_name_max=ELEMENT_NAME_MAX,
            element_description_max=ELEMENT_DESCRIPTION_MAX,
            endpoints={"model": MODEL_IDS["kling-o1"]},
        ),
    ),
    can_cancel=False,  # no cancel endpoint documented
    accepts_webhook=True,
    accepts_local_files=False,  # URLs only: no upload API documented
    supports_dry_run=True,
    reports_progress=False,
    reports_cost=False,
)

# A failed task's message: `error.message`, or a bare `error` / `error_message` string [INF].
_FAILURE_MESSAGE = ("error.message", "error", "error_message")
_TASK_STATUS = StatusShape(
    state="status", states=STATES, error_message=_FAILURE_MESSAGE, error_code=("error.code",),
    failure_kinds={"validation_error": "validation"}, default_failure="the host reported the task as failed",
)

SPEC = HostSpec(
    routes=Routes(submit=TASKS_PATH, status=f"{TASKS_PATH}/{{job_id}}"),
    submit=SubmitShape(job_id="data.task_id"),
    # Task documents come in a {"code", "success", "data"} envelope.
    status=attrs.evolve(_TASK_STATUS, state="data.status", error_message=tuple(f"data.{p}" for p in _FAILURE_MESSAGE),
                        error_code=("data.error.code",)),
    # A failed task may come back with a 400 and its task document (the legacy routes did).
    status_accept=frozenset({400}),
    result=ResultShape(url=("data.output.video_url",)),
    errors=ErrorShape(
        message=("data.message", *(f"data.{p}" for p in _FAILURE_MESSAGE), "message", "error"),
        code=("data.code",),
        # A 2xx whose envelope says "success": false created nothing; its numeric `code` is the
        # only status it has.
        body_error=BodyError(path="success", error=(False,)), body_status="code",
    ),
    # Callbacks are unsigned [DOC]: task_id, status, and data.video_url or error_message.
    callback=CallbackShape(job_id="task_id", status=_TASK_STATUS, result=ResultShape(url=("data.video_url",))),
)


# --- request ---------------------------------------------------------------------------


def element_name(element: Element, index: int) -> str:
    """The element's name, or a deterministic valid one (``element1``…)."""
    return element.name if element.name is not None else f"element{index + 1}"


def element_description(element: Element, index: int) -> str:
    return element.description if element.description is not None else f"reference element {index + 1}"


def build_input(request: EditRequest) -> dict[str, Any]:
    """The ``input`` object of a task for this edit (the core has checked it against CAPABILITIES)."""
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
    body: dict[str, Any] = {"model": MODEL_IDS[request.model], "input": build_input(request)}
    if request.webhook_url is not None:
        body["callback_url"] = request.webhook_url
    if dry_run:
        body["dry_run"] = True
    return body
