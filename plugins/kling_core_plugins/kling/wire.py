"""Kling's own omni-video API as data, plus the request body.

Shapes follow Kling's developer docs (apiReference/model/OmniVideo, commonInfo, callback
protocol), summarized in providers.md §4. Nothing here does I/O, so the contract kit can
property-test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kling_core.sdk import (
    AuthenticationError,
    BodyError,
    CallbackShape,
    ContentPolicyError,
    EditRequest,
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
    spell_triple_angle,
)

DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
TASKS_PATH = "/v1/videos/omni-video"

MODEL_NAMES: Mapping[str, str] = {"kling-o1": "kling-video-o1", "kling-o3": "kling-v3-omni"}
REFER_TYPES: Mapping[str, str] = {"edit": "base", "reference": "feature"}
STATES: Mapping[str, HostState] = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "completed",
    "failed": "failed",
}

# The auth flow adds what it saw: whether a fresh token was refused too, and the clock offset.
CLOCK_HINT = "check this machine's system clock (NTP time sync)"


# Service code -> rule [DOC] commonInfo error-code table (providers.md §4.5; the HTTP status the
# docs pair with each code is in the comment). The code decides, not the HTTP status: 429
# carries credit (1102) and account (1100/1101/1304) problems as well as rate limits, so a 429
# alone is not a reason to retry.
_AUTH = AuthenticationError
_BY_CODE: Mapping[int, ErrorRule] = {
    1000: ErrorRule(_AUTH, False, "authentication failed: check KLING_ACCESS_KEY and KLING_SECRET_KEY"),  # 401
    1001: ErrorRule(_AUTH, False, "authorization header is empty"),  # 401
    1002: ErrorRule(_AUTH, False, "token is invalid: check KLING_ACCESS_KEY and KLING_SECRET_KEY"),  # 401
    1003: ErrorRule(_AUTH, False, f"token not yet valid by the host's clock: {CLOCK_HINT}"),  # 401
    1004: ErrorRule(_AUTH, False, f"token expired by the host's clock: {CLOCK_HINT}"),  # 401
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
    # "parallel task over resource pack limit": a task holds a slot from submitted until finished,
    # and the refused submit made none, so the client waits for one of its jobs to end.
    1303: ErrorRule(RateLimitedError, True, "concurrency or QPS over the resource pack limit",
                    in_flight_limit=True),  # 429
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


def _model(name: str) -> ModelCapabilities:
    return ModelCapabilities(
        model=name,
        edit_modes=tuple(REFER_TYPES),
        qualities=("std", "pro"),
        max_references=4,  # images + elements with a reference video
        max_images=4,
        max_elements=0,
        # Kling takes element ids from its own element library, not images: not expressible
        # in the provider-neutral request, so elements are refused before any call.
        accepts_elements=False,
        # refer_type base (our edit): aspect ratio "not supported", duration "invalid" (the output
        # follows the input). refer_type feature (our reference): aspect_ratio is required ("when
        # neither a first-frame reference nor video editing is used") and duration is taken; with a
        # reference video Kling makes 3–10 s (third-party docs agree; providers.md §8).
        accepts_aspect_ratio=True, aspect_ratio_modes=("reference",), aspect_ratio_required_modes=("reference",),
        accepts_duration=True, duration_modes=("reference",), durations=(3, 10),
        refusals={"aspect_ratio": "Kling: not supported for video editing (refer_type base)",
                  "duration": "Kling: with refer_type base the output follows the input"},
        endpoints={"model_name": MODEL_NAMES[name]},
    )


CAPABILITIES = ProviderCapabilities(
    models=tuple(_model(name) for name in MODEL_NAMES),
    can_cancel=False,  # no cancel endpoint documented
    accepts_webhook=True,
    accepts_local_files=False,  # the video must be a URL
    supports_dry_run=False,
    can_reconcile=True,  # external_task_id carries the client key
    reports_progress=False,
    reports_cost=True,  # final_unit_deduction
    # No price table: Kling bills in resource-pack units whose dollar price depends on the
    # pack bought, so only the units a job used (final_unit_deduction) are known [GAP].
    prices=(),
)

# The task document, inside the {"code", "message", "request_id", "data"} envelope of every
# answer (and bare in callbacks). The query path takes a task id or an external_task_id.
_TASK_STATUS = StatusShape(state="task_status", states=STATES, error_message=("task_status_msg",),
                           default_failure="the host reported the task as failed")
_TASK_RESULT = ResultShape(url=("task_result.videos.0.url",), credits="final_unit_deduction",
                           duration="task_result.videos.0.duration", created_at_ms="created_at",
                           completed_at_ms="updated_at")


SPEC = HostSpec(
    routes=Routes(submit=TASKS_PATH, status=f"{TASKS_PATH}/{{job_id}}", lookup=f"{TASKS_PATH}/{{client_key}}"),
    submit=SubmitShape(job_id="data.task_id", data={"external_task_id": "data.task_info.external_task_id"}),
    status=_TASK_STATUS.within("data"),
    result=_TASK_RESULT.within("data"),
    errors=ErrorShape(message=("message",), code=("code",), request_id="request_id",
                      body_error=BodyError(path="code", ok=(0,))),
    lookup_not_found=frozenset({str(NOT_FOUND_CODE)}),
    callback=CallbackShape(job_id="task_id", status=_TASK_STATUS, result=_TASK_RESULT,
                           client_key="task_info.external_task_id"),
)


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
    if request.edit_mode == "reference":  # refer_type feature only: the base edit follows the input
        if request.aspect_ratio is not None:
            body["aspect_ratio"] = request.aspect_ratio
        if request.duration is not None:
            body["duration"] = str(request.duration)  # a string, "3".."15"
    if request.images:
        body["image_list"] = [{"image_url": url} for url in request.images]
    if request.webhook_url is not None:
        body["callback_url"] = request.webhook_url
    if request.client_key is not None:
        # Unique per account on Kling's side: a lost submit answer can be looked up by it.
        body["external_task_id"] = request.client_key
    return body
