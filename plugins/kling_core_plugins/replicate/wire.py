"""Replicate's predictions API as data, plus the prediction body.

Shapes follow replicate.com's docs (topics/predictions, create-a-prediction, rate-limits,
webhooks/receive-webhook, webhooks/verify-webhook) and the input schemas of the official
models ``kwaivgi/kling-o1`` and ``kwaivgi/kling-v3-omni-video`` (their ``/api`` pages),
summarized in docs/providers.md ("Replicate"). What the docs leave open (the exact 401, 402
and 422 bodies, the cancel answer for a finished prediction) is marked inferred here and in
the cassettes. Nothing here does I/O, so the contract kit can property-test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kling_core.sdk import (
    AuthenticationError,
    CallbackShape,
    CancelShape,
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

DEFAULT_BASE_URL = "https://api.replicate.com"
PREDICTIONS_PATH = "/v1/predictions"

# Canonical model -> Replicate official model (owner/name); submits go to
# POST /v1/models/{owner}/{name}/predictions, which runs the model's latest version.
MODEL_IDS: Mapping[str, str] = {"kling-o1": "kwaivgi/kling-o1", "kling-o3": "kwaivgi/kling-v3-omni-video"}
# Canonical edit mode -> `video_reference_type` ("'feature' for style/camera reference, 'base'
# for video editing"); always sent, because the host's default is feature.
REFERENCE_TYPES: Mapping[str, str] = {"edit": "base", "reference": "feature"}
# Canonical quality -> `mode`, per model: O1 documents std|pro, v3-omni standard|pro.
MODES: Mapping[str, Mapping[str, str]] = {
    "kling-o1": {"std": "std", "pro": "pro"},
    "kling-o3": {"std": "standard", "pro": "pro"},
}
# The documented input of each model, as JSON Schema (this plugin's schemas/ folder).
REQUEST_SCHEMAS: Mapping[str, str] = {
    "kling-o1": "replicate-kling-o1-request.schema.json",
    "kling-o3": "replicate-kling-v3-omni-request.schema.json",
}
# Prediction status -> canonical state [DOC topics/predictions]. `aborted`: stopped before it
# started (a deadline passed), not charged [DOC changelog 2025-10-16-prediction-deadlines]; the
# API also sends it unasked (replicate-python #449, #460), and an unknown status would fail
# every poll of the job.
STATES: Mapping[str, HostState] = {
    "starting": "queued",
    "processing": "running",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
    "aborted": "failed",
}
# API predictions lose their input, output and logs an hour after they end and then say
# `data_removed: true` [DOC topics/predictions/data-retention]: a succeeded prediction read
# later has no output, which is an expired result, not a protocol error.
OUTPUT_REMOVED = ("Replicate removed this prediction's output (an API prediction keeps it for an hour "
                  "after it ends); the job ran and was charged, and it was not resubmitted")


def output_removed(doc: Any) -> bool:
    return (isinstance(doc, Mapping) and doc.get("status") == "succeeded" and doc.get("data_removed") is True
            and not doc.get("output"))


# Webhook events: only the finished prediction is of use (the default also sends each output).
WEBHOOK_EVENTS = ("completed",)

# Errors are RFC 7807 problem details {"title", "detail", "status"} (replicate-python's
# ReplicateError); statuses decide, since no machine code is documented.
ERRORS = ErrorTable(
    by_status={
        401: ErrorRule(AuthenticationError, False, "invalid or missing API token (check REPLICATE_API_TOKEN)"),
        402: ErrorRule(InsufficientCreditsError, False, "insufficient credit"),  # [INF] body not documented
        404: ErrorRule(ProviderError, False, "no such model or prediction"),
        422: ErrorRule(ProviderValidationError, False, "input validation failed"),
        429: ErrorRule(RateLimitedError, True, "request was throttled"),  # [DOC rate-limits]
    },
)


def _model(name: str, durations: tuple[int, int], aspect_required: tuple[str, ...] = ()) -> ModelCapabilities:
    return ModelCapabilities(
        model=name,
        edit_modes=tuple(REFERENCE_TYPES),
        qualities=tuple(MODES[name]),
        max_references=4,  # reference_images: "Max 7 without video, 4 with video"
        max_images=4,
        max_elements=0,
        accepts_elements=False,  # no element input on either model page
        # "Ignored for video editing (base)": both are taken with the feature reference only.
        accepts_aspect_ratio=True, aspect_ratio_modes=("reference",), aspect_ratio_required_modes=aspect_required,
        accepts_duration=True, duration_modes=("reference",), durations=durations,
        refusals={"elements": "Replicate's Kling models take reference_images only, no elements",
                  "aspect_ratio": "Replicate: ignored for video editing (video_reference_type base)",
                  "duration": "Replicate: ignored for video editing; the output follows the input"},
        endpoints={"model": MODEL_IDS[name]},
    )


CAPABILITIES = ProviderCapabilities(
    # O1: "With video reference (feature type): 3-10"; v3-omni: duration 3-15.
    # v3-omni's page calls aspect_ratio required with a feature reference, yet fills in 16:9
    # when it is missing: required here, so a 9:16 clip never comes back 16:9 unasked.
    models=(_model("kling-o1", (3, 10)), _model("kling-o3", (3, 15), aspect_required=("reference",))),
    can_cancel=True,  # POST /v1/predictions/{id}/cancel
    accepts_webhook=True,
    accepts_local_files=False,  # inputs are URLs (the files API is not used)
    supports_dry_run=False,
    can_reconcile=False,  # no look-up by a client key
    reports_progress=False,  # logs are free text
    reports_cost=False,
    # No price list for these models was found on Replicate's pages (providers.md), and the
    # documented limits are request rates (600 creates a minute), not jobs in flight.
    prices=(),
    max_in_flight=None,
)

_PREDICTION = StatusShape(
    state="status", states=STATES, error_message=("error",),
    default_failure="Replicate ended the prediction without an output (failed, or aborted before it ran: "
                    "an aborted prediction is not charged)",
)
# `output` is a URI string for both models; a list of URIs is read too [INF].
_OUTPUT = ResultShape(url=("output", "output.0"))

SPEC = HostSpec(
    routes=Routes(submit="/v1/models/{model}/predictions", status=f"{PREDICTIONS_PATH}/{{job_id}}",
                  cancel=f"{PREDICTIONS_PATH}/{{job_id}}/cancel"),
    submit=SubmitShape(job_id="id", urls={"status": "urls.get", "cancel": "urls.cancel"}),
    status=_PREDICTION,
    result=_OUTPUT,
    # The cancel answer is the prediction; one already finished keeps its status [INF].
    cancel=CancelShape(state="status", accepted=frozenset({"canceled", "starting", "processing"}),
                       too_late=frozenset({"succeeded", "failed", "aborted"})),
    # A throttled request says its wait only in the text [DOC rate-limits]; a Retry-After wins.
    errors=ErrorShape(message=("detail", "title"), code=(), retry_after_text=r"resets in ~?(\d+(?:\.\d+)?)\s*s\b"),
    # Webhooks post the prediction itself, signed the Standard Webhooks way [DOC verify-webhook].
    callback=CallbackShape(job_id="id", status=_PREDICTION, result=_OUTPUT, signature="standard-webhooks"),
)


# --- request ---------------------------------------------------------------------------


def submit_path(request: EditRequest) -> str:
    return SPEC.routes.submit.format(model=MODEL_IDS[request.model])


def build_input(request: EditRequest) -> dict[str, Any]:
    """The model's ``input`` for this edit (the core has checked it against CAPABILITIES)."""
    body: dict[str, Any] = {
        "prompt": render_prompt(request.prompt, spell_triple_angle),  # <<<image_1>>>, <<<video_1>>>
        "reference_video": request.video,
        "video_reference_type": REFERENCE_TYPES[request.edit_mode],
        "keep_original_sound": request.keep_audio,  # explicit: the host's default is true
        "mode": MODES[request.model][request.quality],
    }
    if request.images:
        body["reference_images"] = list(request.images)
    if request.edit_mode == "reference":
        if request.aspect_ratio is not None:
            body["aspect_ratio"] = request.aspect_ratio
        if request.duration is not None:
            body["duration"] = request.duration
    return body


def build_prediction(request: EditRequest) -> dict[str, Any]:
    """The ``POST /v1/models/{owner}/{name}/predictions`` body."""
    body: dict[str, Any] = {"input": build_input(request)}
    if request.webhook_url is not None:
        body["webhook"] = request.webhook_url
        body["webhook_events_filter"] = list(WEBHOOK_EVENTS)
    return body
