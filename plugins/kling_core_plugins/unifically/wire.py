"""Unifically's unified task API (``/v1/tasks``) as data, plus the request body.

Shapes follow docs.unifically.com (api-reference/v1-tasks, callbacks, error-handling, the
``kuaishou/kling-o1-video-edit`` and ``kuaishou/kling-3.0-omni-video`` model pages) and the
host's own O1 Edit page (docs/providers.md, "Unifically"). Where the docs are silent (the
failed-poll shape, an insufficient-balance status, the dry-run answer, the Omni element
fields) the tables below say what is inferred. Nothing here does I/O, so the contract kit
can property-test it.
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
    Price,
    ProviderCapabilities,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ResultShape,
    Routes,
    StatusShape,
    SubmitShape,
    render_prompt,
    spell_canonical,
    spell_snake,
)

DEFAULT_BASE_URL = "https://api.unifically.com"
TASKS_PATH = "/v1/tasks"

# Canonical model -> Unifically model id. O1: the O1 Edit route, which "only takes image_urls"
# (the host's O1 Edit page); O3: the Kling 3.0 Omni model in its transform / video_reference
# modes (docs.unifically.com/models/video/kling/kling-3.0-omni-video), which takes elements.
MODEL_IDS: Mapping[str, str] = {"kling-o1": "kuaishou/kling-o1-video-edit", "kling-o3": "kuaishou/kling-3.0-omni-video"}

# Canonical edit mode -> the host's `video_mode`, per model; always sent (O1's default,
# "reference", is a style/motion guide, not an edit). The mapping is inferred from the host's
# words (quoted in docs/providers.md): "transform" = Kling's refer_type base, the other = feature.
VIDEO_MODES_BY_MODEL: Mapping[str, Mapping[str, str]] = {
    "kling-o1": {"edit": "transform", "reference": "reference"},
    "kling-o3": {"edit": "transform", "reference": "video_reference"},
}
VIDEO_MODES: Mapping[str, str] = VIDEO_MODES_BY_MODEL["kling-o1"]
# `options.video_mode` sends the host's own mode instead (the canonical mapping is inferred).
VIDEO_MODE_OPTION = "video_mode"
# With a video_url the Omni model takes only aspect_ratio "auto" [DOC kling-3.0-omni-video].
OMNI_ASPECT_RATIO = "auto"

REQUEST_SCHEMAS: Mapping[str, str] = {
    "kling-o1": "unifically-task-request.schema.json",
    "kling-o3": "unifically-omni-task-request.schema.json",
}

# Host task status -> canonical state.
STATES: Mapping[str, HostState] = {
    "pending": "queued",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
}

ELEMENT_DESCRIPTION_MAX = 100  # Kling 3.0 element input: description "max 100 chars"
ELEMENT_IMAGES_MAX = 4  # "Each element accepts up to four image_urls"
REFERENCE_POOL = 4  # images and elements share one pool with a video


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
            edit_modes=tuple(VIDEO_MODES_BY_MODEL["kling-o1"]),
            qualities=("std", "pro"),
            max_references=REFERENCE_POOL,
            max_images=4,
            max_elements=0,
            # "Omni Edit adds an elements parameter ... O1 Edit only takes image_urls" [DOC O1 Edit page].
            accepts_elements=False,
            accepts_aspect_ratio=True,  # documented input (16:9, 9:16, 1:1); sent only when given
            accepts_duration=False,  # "output length follows input length"
            refusals={"elements": "Unifically's O1 Edit takes images only (image_urls); use kling-o3 "
                                  "(Kling 3.0 Omni) for elements",
                      "duration": "Unifically: output length follows input length"},
            endpoints={"model": MODEL_IDS["kling-o1"]},
        ),
        ModelCapabilities(
            model="kling-o3",
            edit_modes=tuple(VIDEO_MODES_BY_MODEL["kling-o3"]),
            qualities=("std", "pro"),
            max_references=REFERENCE_POOL,  # "Both cap inputs at 4" (transform, video_reference)
            max_images=4,
            max_elements=4,
            element_reference_images=(1, 3),  # + the frontal image = the host's 1–4 image_urls
            accepts_elements=True,
            # "Must be 'auto' when video_url is set": always sent as "auto"; no other value.
            accepts_aspect_ratio=True, aspect_ratios=(OMNI_ASPECT_RATIO,),
            # Documented (3–15, default 5); for the transform edit the output follows the input
            # (Kling's base edit), so only the video_reference mode takes it [inferred].
            accepts_duration=True, duration_modes=("reference",), durations=(3, 15),
            element_description_max=ELEMENT_DESCRIPTION_MAX,
            refusals={"duration": "the transform edit follows the input"},
            endpoints={"model": MODEL_IDS["kling-o3"]},
        ),
    ),
    can_cancel=False,  # no cancel endpoint documented
    accepts_webhook=True,
    accepts_local_files=False,  # URLs only: no upload API documented
    supports_dry_run=True,
    reports_progress=False,
    reports_cost=False,
    # The O1 edit page lists one price per second for every resolution (3 s $0.144 ... 10 s
    # $0.48); the Kling 3.0 Omni page was not read for prices: none for kling-o3 [GAP].
    prices=tuple(Price(model="kling-o1", quality=q, usd_per_second=0.048,
                       source="https://docs.unifically.com/models/video/kling/kling-o1/edit", as_of="2026-12-01")
                 for q in ("std", "pro")),
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


def video_mode(request: EditRequest) -> str:
    """The host's ``video_mode``: the user's own (``options.video_mode``), else the canonical mapping."""
    given = request.options.get(VIDEO_MODE_OPTION)
    return given if isinstance(given, str) else VIDEO_MODES_BY_MODEL[request.model][request.edit_mode]


def omni_element(element: Element) -> dict[str, Any]:
    """A Kling 3.0 element input: ``type`` image, its 1–4 ``image_urls`` (frontal first) and the
    description when given; the element's name has no field (elements go by position) [INF]."""
    out: dict[str, Any] = {"type": "image", "image_urls": [element.frontal_image, *element.reference_images]}
    if element.description is not None:
        out["description"] = element.description
    return out


def build_input(request: EditRequest) -> dict[str, Any]:
    """The ``input`` object of a task for this edit (the core has checked it against CAPABILITIES)."""
    omni = request.model == "kling-o3"
    body: dict[str, Any] = {
        "video_url": request.video,
        # O1 Edit writes @image_1 (its model pages); the Omni page writes @Image1, @Element1.
        "prompt": render_prompt(request.prompt, spell_canonical if omni else spell_snake),
        "video_mode": video_mode(request),
        "mode": request.quality,
    }
    if omni:
        body["aspect_ratio"] = OMNI_ASPECT_RATIO
        if request.duration is not None:
            body["duration"] = request.duration
    else:
        body["keep_audio"] = request.keep_audio  # explicit: the host's default may change
        if request.aspect_ratio is not None:
            body["aspect_ratio"] = request.aspect_ratio
    if request.images:
        body["image_urls"] = list(request.images)
    if request.elements:
        if not omni:
            raise ValueError("Unifically's O1 Edit takes no elements (checked before any call)")
        body["elements"] = [omni_element(el) for el in request.elements]
    return body


def option_problems(request: EditRequest) -> list[tuple[str, str]]:
    """(field, why) for what this host cannot take beyond the capability data."""
    out: list[tuple[str, str]] = []
    modes = sorted(set(VIDEO_MODES_BY_MODEL.get(request.model, {}).values()))
    for key, value in request.options.items():
        if key != VIDEO_MODE_OPTION:
            out.append((f"options.{key}", f"unknown option for unifically (known: {VIDEO_MODE_OPTION})"))
        elif value not in modes:
            out.append((f"options.{key}", f"{value!r} is not a {MODEL_IDS.get(request.model, request.model)} "
                                          f"video_mode (one of {', '.join(modes)})"))
    if request.model == "kling-o3" and request.keep_audio:
        out.append(("keep_audio", "Unifically's Kling 3.0 Omni model documents no keep_audio input (its "
                                  "native_audio generates new sound); leave keep_audio false, or use kling-o1"))
    return out


def build_task(request: EditRequest, *, dry_run: bool = False) -> dict[str, Any]:
    """The full ``POST /v1/tasks`` body."""
    body: dict[str, Any] = {"model": MODEL_IDS[request.model], "input": build_input(request)}
    if request.webhook_url is not None:
        body["callback_url"] = request.webhook_url
    if dry_run:
        body["dry_run"] = True
    return body
