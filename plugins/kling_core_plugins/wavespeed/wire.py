"""WaveSpeedAI's prediction API as data, plus the request body.

Shapes follow wavespeed.ai's docs (the Kling O1/O3 video-edit model pages and their llms.txt,
"How to Get Result", the submit/result response tables, webhooks, verifying webhooks, account
levels), summarized in docs/providers.md ("WaveSpeed"). Every answer is the ``{"code",
"message", "data"}`` envelope; ``data`` is a prediction: ``id``, ``status`` (created,
processing, completed, failed), ``outputs`` (URLs), ``urls.get``, ``error``. What the docs do
not show (the error answers' bodies, an insufficient-balance status) is marked [INF] below.
Nothing here does I/O, so the contract kit can property-test it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kling_core.sdk import (
    AuthenticationError,
    BodyError,
    CallbackShape,
    EditRequest,
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
    VideoLimits,
    render_prompt,
    spell_triple_angle,
)

DEFAULT_BASE_URL = "https://api.wavespeed.ai"
RESULT_PATH = "api/v3/predictions/{job_id}/result"

# (canonical model, quality) -> model id; the submit goes to POST /api/v3/<model id>.
# O1 pro is the un-suffixed `kling-video-o1` family, as WaveSpeed names it.
MODEL_IDS: Mapping[tuple[str, str], str] = {
    ("kling-o1", "std"): "kwaivgi/kling-video-o1-std/video-edit",
    ("kling-o1", "pro"): "kwaivgi/kling-video-o1/video-edit",
    ("kling-o3", "std"): "kwaivgi/kling-video-o3-std/video-edit",
    ("kling-o3", "pro"): "kwaivgi/kling-video-o3-pro/video-edit",
}

STATES: Mapping[str, HostState] = {
    "created": "queued",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
}
# The webhook is a query parameter on the submit URL ("add the webhook parameter to your API
# request URL").
WEBHOOK_PARAM = "webhook"
# Callbacks carry webhook-id, webhook-timestamp and webhook-signature "v3,<hex HMAC-SHA256>" over
# "{id}.{timestamp}.{raw body}", keyed by the secret from GET /api/v3/webhook/secret without its
# "whsec_" prefix (used as is, not base64-decoded); at most 300 s old. The header names are
# Standard Webhooks', the encoding is not, hence a scheme of its own.
CALLBACK_SIGNATURE = "wavespeed-v3"

# Account levels: jobs processing at once. New accounts are Bronze (2); a top-up raises it
# (Silver 300, Gold 3,000, Ultra 10,000). Extra jobs wait rather than fail, so the bound only
# keeps a Bronze account from queueing behind itself; `max_in_flight` in config raises it.
BRONZE_CONCURRENCY = 2
IMAGES_MAX = 4  # "Up to 4 reference images" (O3 pages); Kling's own cap with a video [INF for O1]

_PRICE_PAGE = "https://wavespeed.ai/models/kwaivgi/kling-video-o1-std/video-edit"
PRICES = (
    # The model page shows "$0.63 per run" for its default example and no table. WaveSpeed's O1
    # std reference-to-video table prices a run with a video at $0.63 for 5 s and $1.26 for 10 s,
    # so the edit is taken as $0.126 per output second: read as a flat $0.63, a 10 s edit would
    # pass a --max-cost check at half its likely charge. WaveSpeed's Kling pages (e.g. the Kling
    # 2.5 Turbo std image-to-video one) state a 5 s minimum charge; the video-edit pages state
    # none either way, so the edit is taken to bill at least 5 s too: an estimate that errs high
    # keeps a --max-cost promise, one that errs low breaks it.
    Price(model="kling-o1", quality="std", usd_per_second=0.126, source=_PRICE_PAGE, as_of="2026-12-01",
          min_seconds=5.0,
          note="$0.63 per run on the page; per second from the O1 std reference-to-video table "
               "(5 s $0.63, 10 s $1.26 with a video) [INF]; at least 5 s billed, as "
               "https://wavespeed.ai/docs/docs-api/kwaivgi/kwaivgi-kling-v2.5-turbo-std-image-to-video "
               "states for WaveSpeed's Kling models [INF for the edit]"),
)


def _model(name: str) -> ModelCapabilities:
    return ModelCapabilities(
        model=name,
        edit_modes=("edit",),  # video-edit is Kling's base edit; no reference endpoint is wrapped
        qualities=("std", "pro"),
        max_references=IMAGES_MAX,
        max_images=IMAGES_MAX,
        max_elements=0,
        # The request tables list prompt, video, images, keep_original_sound only; the O3 pro
        # page's "element list control" names no field, so none is sent [INF].
        accepts_elements=False,
        refusals={"elements": "WaveSpeed's video-edit takes reference images (images), no elements",
                  "aspect_ratio": "WaveSpeed's video-edit follows the input's aspect ratio",
                  "duration": "WaveSpeed's video-edit follows the input's length"},
        # 3-10 s, 700-2160 px, <= 200 MB. Longer clips are trimmed to 10 s by the host; refused
        # here instead so an output is never silently shorter than its input.
        video=VideoLimits(min_side=700),
        endpoints={f"edit/{q}": MODEL_IDS[(name, q)] for q in ("std", "pro")},
    )


CAPABILITIES = ProviderCapabilities(
    models=(_model("kling-o1"), _model("kling-o3")),
    can_cancel=False,  # no cancel endpoint documented
    accepts_webhook=True,
    accepts_local_files=False,  # `video`/`images` are URLs (the upload API is not wrapped)
    supports_dry_run=False,
    reports_progress=False,
    reports_cost=False,
    prices=PRICES,
    max_in_flight=BRONZE_CONCURRENCY,
)

# HTTP status -> rule. The docs name 401 (key wrong or not activated by a top-up), 403 (account
# suspended), 429 (account level's rate limit) and "insufficient credits" without a status;
# the rest is the generic meaning, marked [INF].
ERRORS = ErrorTable(
    by_status={
        400: ErrorRule(ProviderValidationError, False, "WaveSpeed rejected the request"),  # [INF]
        401: ErrorRule(AuthenticationError, False, "WaveSpeed rejected the API key (check WAVESPEED_API_KEY; "
                                                   "keys work only after a top-up)"),
        402: ErrorRule(InsufficientCreditsError, False, "not enough WaveSpeed credits (top up)"),  # [INF] status
        403: ErrorRule(AuthenticationError, False, "WaveSpeed refused the account (it may be suspended)"),
        404: ErrorRule(ProviderError, False, "WaveSpeed does not know this model or prediction"),
        422: ErrorRule(ProviderValidationError, False, "WaveSpeed rejected the input"),  # [INF]
        429: ErrorRule(RateLimitedError, True, "rate limited by WaveSpeed (account level limit)"),
        500: ErrorRule(ProviderError, True, "WaveSpeed server error"),
        502: ErrorRule(ProviderError, True, "WaveSpeed gateway error"),
        503: ErrorRule(ProviderError, True, "WaveSpeed unavailable"),
        504: ErrorRule(ProviderError, True, "WaveSpeed timed out"),
    },
)

# Envelope codes that, inside a 2xx answer, mean the request was refused (see SPEC.errors).
REFUSAL_CODES = tuple(range(400, 500))

# A prediction. "completed" with a non-empty `error` is a failed job [INF: `error` is "empty if
# no error occurred"], never a success.
_PREDICTION = StatusShape(state="status", states=STATES, error_message=("error",), completed_error=("error",),
                          default_failure="WaveSpeed reported the prediction as failed")
_OUTPUT = ResultShape(url=("outputs.0",))


SPEC = HostSpec(
    routes=Routes(status=RESULT_PATH),
    # `urls.get` is the prediction's own URL (checked to be on the API host); the template is
    # for a job id given by hand.
    submit=SubmitShape(job_id="data.id", urls={"status": "data.urls.get"}),
    status=_PREDICTION.within("data"),
    result=_OUTPUT.within("data"),
    # Error answers: the same envelope with the HTTP status as `code` and the reason in
    # `message` [INF: only the success envelope is documented]. A 2xx whose envelope `code` is a
    # 4xx is read as that status's error, a refusal [INF]. One carrying a 5xx is not: the host
    # may have made the job, so a submit answered so stays unread (SubmitUncertainError, never
    # "refused") and a status answered so fails the look-up, not the job.
    errors=ErrorShape(message=("message", "error", "data.error"), code=(),
                      body_error=BodyError(path="code", error=REFUSAL_CODES), body_status="code"),
    expired={
        "status": "WaveSpeed does not know this prediction: predictions are kept 7 days (or the id is wrong); "
                  "it was not resubmitted",
    },
    # Callbacks POST the bare prediction (no envelope), on completed and on failed.
    callback=CallbackShape(job_id="id", status=_PREDICTION, result=_OUTPUT, signature=CALLBACK_SIGNATURE),
)


# --- request ---------------------------------------------------------------------------


def model_id(request: EditRequest) -> str:
    return MODEL_IDS[(request.model, request.quality)]


def build_body(request: EditRequest) -> dict[str, Any]:
    """The submit body: the video-edit pages' four fields (the core has checked the rest)."""
    body: dict[str, Any] = {
        "prompt": render_prompt(request.prompt, spell_triple_angle),  # <<<image_1>>>, <<<video_1>>>
        "video": request.video,
        "keep_original_sound": request.keep_audio,  # explicit: the host's default is true
    }
    if request.images:
        body["images"] = list(request.images)
    return body


def option_problems(request: EditRequest) -> list[tuple[str, str]]:
    """(field, why): WaveSpeed's video-edit takes no request options."""
    return [(f"options.{key}", "unknown option for wavespeed (it takes none)") for key in request.options]
