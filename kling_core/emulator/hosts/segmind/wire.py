"""Segmind's wire format as the emulator speaks it (shared/docs/providers.md §2, the segmind cassettes).

Sources are marked as in providers.md; **[INF]** marks shapes the docs do not show:

- every error body is ``{"error": "<message>"}`` [SRC segmind-python exceptions.py]; 401
  ``Missing Authorization or x-api-key in header`` for a missing key [3P], ``Invalid API key``
  for a bad one [INF]; 404 ``Model not found`` / ``Request <id> not found`` [3P]; 406
  ``Not enough credits`` and ``Invalid content type`` [3P]; 429 ``Rate limit exceeded`` with
  ``x-rate-limit-reset-at-utc`` [3P];
- media-editing endpoints validate at run time: a v2 submit with a bad body is accepted and
  the job ends ``FAILED`` (HTTP 422 on status and result) with a message such as ``Prompt is
  Mandatory and must be string`` [3P]; the blocking v1 call answers that message as a 400 [INF];
- the v2 result of a video model carries ``output`` = the video URL [DOC, exact JSON GAP].
"""

from __future__ import annotations

from typing import Any

from kling_core_plugins.segmind.wire import SHOT_TYPES, SLUGS

PROMPT_MAX = 2500
O3_ASPECT_RATIOS = ("16:9", "9:16", "1:1")
O3_DURATIONS = tuple(str(n) for n in range(3, 16))  # "3".."15" [DOC model page]
O3_MODES = ("std", "pro")
MAX_REFERENCES = 4  # images + elements with a video (Kling's own cap, §4) [INF: passed downstream]
# slug -> (canonical model, edit mode)
ENDPOINTS: dict[str, tuple[str, str]] = {slug: key for key, slug in SLUGS.items()}
# Credits charged per accepted job (providers.md §8 prices, rounded) [INF]; a key starts with START_CREDITS.
COSTS = {"kling-o1": 1.3, "kling-o3": 3.15}
START_CREDITS = 1000.0

UNAUTHORIZED_MISSING = "Missing Authorization or x-api-key in header"
UNAUTHORIZED_BAD = "Invalid API key"


def error(message: str) -> dict[str, Any]:
    return {"error": message}


# Scripted failures refused at submit: (status, message).
SUBMIT_FAILURES: dict[str, tuple[int, str]] = {
    "rate_limited": (429, "Rate limit exceeded"),
    "insufficient_credits": (406, "Not enough credits"),
    "server_error": (500, "Internal Server Error"),
}
# Scripted failures that end an accepted job: the FAILED message.
JOB_FAILURE_MESSAGES: dict[str, str] = {
    "content_policy": "The content could not be processed because it was flagged by the content checker",
    "completed_with_error": "elementReferList: size must be between 1 and 3",
}

_FIELD_NAMES = {"video": "video_url", "images": "image_urls", "frontal_image": "frontal_image_url",
                "reference_images": "reference_image_urls"}


def field_name(field: str) -> str:
    """A canonical field path in Segmind's body names: ``images[0]`` -> ``image_urls[0]``."""
    import re

    return re.sub(r"[a-z_]+", lambda m: _FIELD_NAMES.get(m.group(0), m.group(0)), field)


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate(body: dict[str, Any], model: str, edit_mode: str) -> tuple[dict[str, Any], list[str]]:
    """(intake, problems) for a submit body; the intake is usable only when there are no problems."""
    out: list[str] = []
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        out.append("Prompt is Mandatory and must be string")
    elif len(prompt) > PROMPT_MAX:
        out.append(f"Prompt must be at most {PROMPT_MAX} characters")
    video = body.get("video_url")
    if not _is_str(video):
        out.append("video_url is Mandatory and must be string")
    keep_audio = body.get("keep_audio", False)
    if keep_audio is None:
        keep_audio = False
    if not isinstance(keep_audio, bool):
        out.append("keep_audio must be boolean")
    images: list[str] = []
    raw_images = body.get("image_urls")
    if raw_images is not None:
        if not isinstance(raw_images, list) or not all(_is_str(x) for x in raw_images):
            out.append("image_urls must be a list of strings")
        else:
            images = list(raw_images)
    elements: list[dict[str, Any]] = []
    raw_elements = body.get("elements")
    if raw_elements is not None:
        if not isinstance(raw_elements, list):
            out.append("elements must be a list")
        else:
            for i, el in enumerate(raw_elements):
                if not isinstance(el, dict) or not _is_str(el.get("frontal_image_url")):
                    out.append(f"elements[{i}].frontal_image_url is Mandatory and must be string")
                    continue
                refs = el.get("reference_image_urls")
                if not isinstance(refs, list) or not 1 <= len(refs) <= 3 or not all(_is_str(r) for r in refs):
                    out.append(f"elements[{i}].reference_image_urls must be a list of 1 to 3 strings")
                    continue
                elements.append({"frontal_image": el["frontal_image_url"], "reference_images": list(refs)})
    if len(images) + len(elements) > MAX_REFERENCES:
        out.append(f"At most {MAX_REFERENCES} images and elements in total with a video, "
                   f"got {len(images) + len(elements)}")
    quality = "pro"
    if model == "kling-o3":
        mode = body.get("mode", "pro")
        if mode not in O3_MODES:
            out.append(f"mode must be one of {', '.join(O3_MODES)}")
        else:
            quality = mode
        duration = body.get("duration")
        if duration is not None and (not isinstance(duration, str) or duration not in O3_DURATIONS):
            out.append(f"duration must be one of \"{O3_DURATIONS[0]}\" to \"{O3_DURATIONS[-1]}\"")
        ratio = body.get("aspect_ratio")
        if ratio is not None and ratio not in O3_ASPECT_RATIOS:
            out.append(f"aspect_ratio must be one of {', '.join(O3_ASPECT_RATIOS)}")
        shot = body.get("shot_type")
        if shot is not None and shot not in SHOT_TYPES:
            out.append(f"shot_type must be one of {', '.join(SHOT_TYPES)}")
    intake = {"prompt": prompt if isinstance(prompt, str) else "", "video": video if isinstance(video, str) else "",
              "keep_audio": keep_audio is True, "images": images, "elements": elements, "model": model,
              "quality": quality, "edit_mode": edit_mode}
    return intake, out
