"""Segmind's wire format as data plus pure functions (providers.md §2, §6).

Slugs per model and edit mode; O1 has no quality switch on Segmind (one ``pro``-grade
endpoint, inferred), O3 takes ``mode``, ``duration`` (a string), ``aspect_ratio`` and
``shot_type`` (a request option). Left out, ``duration`` and ``aspect_ratio`` take the host's
own defaults ("5", "16:9"), which do not follow the input.
No O1 reference slug is documented; the O3 ``-reference`` slug is named on Segmind's site but
its field list was not captured, so it gets the O3 edit fields (inferred).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kling_core.sdk import (
    AuthenticationError,
    EditRequest,
    ErrorRule,
    ErrorTable,
    HostState,
    InsufficientCreditsError,
    ModelCapabilities,
    Price,
    ProviderCapabilities,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    fal_style_edit_body,
)

API_BASE = "https://api.segmind.com"
SLUGS: dict[tuple[str, str], str] = {
    ("kling-o1", "edit"): "kling-o1-video-to-video-edit",
    ("kling-o3", "edit"): "kling-o3-video2video-edit",
    ("kling-o3", "reference"): "kling-o3-video2video-reference",
}
# Which optional body fields each model's schema has.
O3_FIELDS = frozenset({"mode", "duration", "aspect_ratio", "shot_type"})
# O3's `shot_type` (documented, default "customize"; no value list given) as a request option,
# sent only when given. "intelligence" is the other value of Kling's own field [inferred].
SHOT_TYPE_OPTION = "shot_type"
SHOT_TYPES = ("customize", "intelligence")
MODEL_FIELDS: Mapping[str, frozenset[str]] = {"kling-o1": frozenset(), "kling-o3": O3_FIELDS}

STATES: Mapping[str, HostState] = {"QUEUED": "queued", "PROCESSING": "running", "COMPLETED": "completed",
                              "FAILED": "failed"}
CREDITS_HEADER = "x-remaining-credits"
RESET_HEADER = "x-rate-limit-reset-at-utc"  # third-party report (providers.md §2.4)

CAPABILITIES = ProviderCapabilities(
    models=(
        ModelCapabilities(
            model="kling-o1", edit_modes=("edit",), qualities=("pro",),
            endpoints={"edit": SLUGS[("kling-o1", "edit")]},
            typical_seconds=(223.0, 255.0),  # the model page's times (providers.md §2.1, §8)
        ),
        ModelCapabilities(
            model="kling-o3", edit_modes=("edit", "reference"), qualities=("std", "pro"),
            accepts_aspect_ratio=True, accepts_duration=True,
            endpoints={"edit": SLUGS[("kling-o3", "edit")], "reference": SLUGS[("kling-o3", "reference")]},
            typical_seconds=(210.0, 255.0),  # "~210-255 s" on both model pages (providers.md §2.1) [inferred for O3]
        ),
    ),
    can_cancel=False,  # no cancel documented
    accepts_webhook=False,  # no per-request webhook for model inference
    accepts_local_files=False,  # URLs only (or a kling_media_uploader plugin)
    supports_dry_run=False,
    reports_progress=False,
    reports_cost=True,  # x-remaining-credits
    # Per finished job. The O1 edit's page showed about $1.28-1.30 a run; the higher figure is
    # kept. O3's runs range $0.945-6.30 by duration and mode with no table read: none [GAP].
    prices=(Price(model="kling-o1", quality="pro", usd_per_run=1.30,
                  source="https://www.segmind.com/models/kling-o1-video-to-video-edit",
                  as_of="2026-12-01", note="about $1.28-1.30 per run seen; the higher figure [inferred]"),),
)

ERROR_TABLE = ErrorTable(
    by_status={
        400: ErrorRule(ProviderValidationError, False, "Segmind rejected the request"),
        401: ErrorRule(AuthenticationError, False, "Segmind rejected the API key (SEGMIND_API_KEY)"),
        403: ErrorRule(AuthenticationError, False, "the Segmind key lacks permission for this model"),
        404: ErrorRule(ProviderError, False, "Segmind does not know this model or request"),
        406: ErrorRule(InsufficientCreditsError, False, "not enough Segmind credits"),
        429: ErrorRule(RateLimitedError, True, "rate limited by Segmind"),
        500: ErrorRule(ProviderError, True, "Segmind server error"),
        502: ErrorRule(ProviderError, True, "Segmind gateway error"),
        504: ErrorRule(ProviderError, True, "Segmind timed out"),
    },
)


def submit_body(request: EditRequest) -> dict[str, Any]:
    body = fal_style_edit_body(request)
    fields = MODEL_FIELDS.get(request.model, frozenset())
    if "mode" in fields:
        body["mode"] = request.quality
    # Sent only when asked for: Segmind's own defaults ("5", "16:9") would not follow the input.
    if "duration" in fields and request.duration is not None:
        body["duration"] = str(request.duration)
    if "aspect_ratio" in fields and request.aspect_ratio is not None:
        body["aspect_ratio"] = request.aspect_ratio
    if "shot_type" in fields and SHOT_TYPE_OPTION in request.options:
        body["shot_type"] = request.options[SHOT_TYPE_OPTION]
    return body


def option_problems(request: EditRequest, apis: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field, why) for request options Segmind does not take."""
    out: list[tuple[str, str]] = []
    for key, value in request.options.items():
        if key == "api":
            if value not in apis:
                out.append((f"options.{key}", f"{value!r} is not one of {', '.join(apis)}"))
        elif key == SHOT_TYPE_OPTION:
            if SHOT_TYPE_OPTION not in MODEL_FIELDS.get(request.model, frozenset()):
                out.append((f"options.{key}", f"{request.model} on segmind has no shot_type (kling-o3 only)"))
            elif value not in SHOT_TYPES:
                out.append((f"options.{key}", f"{value!r} is not one of {', '.join(SHOT_TYPES)}"))
        else:
            out.append((f"options.{key}", f"unknown option for segmind (known: api, {SHOT_TYPE_OPTION})"))
    return out


# Where the video URL is: ``output`` is documented as "the video URL" for video models; a list
# or an object holding ``url`` is accepted too (exact shape unrecorded).
OUTPUT_PATHS = ("output", "output.0", "output.url", "video_url", "video", "video.url", "url")
REQUEST_SCHEMAS: Mapping[str, str] = {
    "kling-o1": "segmind-kling-o1-edit-request.schema.json",
    "kling-o3": "segmind-kling-o3-edit-request.schema.json",
}


def credits(headers: Mapping[str, str]) -> float | None:
    raw = headers.get(CREDITS_HEADER)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None
