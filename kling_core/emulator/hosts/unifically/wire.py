"""Unifically's ``/v1/tasks`` wire format: the envelope, error bodies and input validation.

Shapes per docs/providers.md ("Unifically") and the plugin's cassettes
(``kling_core_plugins/unifically``): every answer is ``{"code", "success", "data"}``; an error
is ``{"code": <HTTP status>, "success": false, "data": {"message", "code"}}`` with the
documented (status, code) pairs — 400 ``generation_failed``, 401 ``authentication_failed``,
422 ``validation_error``, 429 ``rate_limit_exceeded``, 500 ``internal_error`` — and 402
``insufficient_balance`` [INF]. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kling_core.contract.prompt import normalize_prompt
from kling_core.emulator.hosts.base import is_http_url

O1 = "kuaishou/kling-o1-video-edit"
OMNI = "kuaishou/kling-3.0-omni-video"
MODELS: Mapping[str, str] = {O1: "kling-o1", OMNI: "kling-o3"}  # host model id -> canonical model
# Host video_mode -> canonical edit mode, per model (the plugin's mapping, reversed), and the
# mode a task gets when it names none (O1's page: "reference"; Omni: "transform" [INF]).
VIDEO_MODES: Mapping[str, Mapping[str, str]] = {
    O1: {"transform": "edit", "reference": "reference"},
    OMNI: {"transform": "edit", "video_reference": "reference"},
}
DEFAULT_VIDEO_MODE: Mapping[str, str] = {O1: "reference", OMNI: "transform"}
QUALITIES = ("std", "pro")
O1_ASPECT_RATIOS = ("16:9", "9:16", "1:1")
PROMPT_MAX = 2500  # Kling's prompt limit [INF for Unifically]
POOL = 4  # images + elements with a video
ELEMENT_IMAGES = (1, 4)
ELEMENT_DESCRIPTION_MAX = 100
OMNI_DURATIONS = (3, 15)
# dry_run price per task, USD [INF: the answer's shape is inferred (cassette dry-run), the
# prices are placeholders, not Unifically's price list].
PRICES: Mapping[tuple[str, str], float] = {(O1, "std"): 0.125, (O1, "pro"): 0.175, (OMNI, "std"): 0.15,
                                           (OMNI, "pro"): 0.2}


def envelope(data: Any, code: int = 200) -> dict[str, Any]:
    return {"code": code, "success": True, "data": data}


def error(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": status, "success": False, "data": {"message": message, "code": code, **extra}}


AUTH_FAILED = error(401, "authentication_failed", "Invalid API key")
NOT_FOUND = error(404, "not_found", "Not found")
TASK_NOT_FOUND = error(404, "not_found", "Task not found")
TOO_LARGE = error(413, "validation_error", "Request body too large")
RATE_LIMITED = error(429, "rate_limit_exceeded", "Too many requests")
# Scripted failures refused at submit, as (HTTP status, body).
SUBMIT_FAILURES: Mapping[str, tuple[int, dict[str, Any]]] = {
    "insufficient_credits": (402, error(402, "insufficient_balance", "Insufficient balance")),  # [INF]
    "server_error": (500, error(500, "internal_error", "Internal server error")),
}
# Scripted failures of an accepted task: its data.error {message, code}.
JOB_FAILURES: Mapping[str, tuple[str, str]] = {
    "content_policy": ("content_policy_violation", "Generation failed: the prompt or inputs were flagged by "
                                                   "the content moderation system"),
    "completed_with_error": ("generation_failed", "Generation failed: elementReferList: size must be "
                                                  "between 1 and 3"),
}


_ELEMENT_FIELD = re.compile(r"elements\[(\d+)\]\.(frontal_image|reference_images\[(\d+)\])$")


def input_field(field: str) -> str:
    """The host's name for a canonical input field: ``images[0]`` -> ``input.image_urls[0]``."""
    if field == "video":
        return "input.video_url"
    if field.startswith("images["):
        return f"input.image_urls{field[len('images'):]}"
    m = _ELEMENT_FIELD.match(field)
    if m:
        index = 0 if m.group(3) is None else int(m.group(3)) + 1
        return f"input.elements[{m.group(1)}].image_urls[{index}]"
    return f"input.{field}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def validate(body: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """(task, problems) for a ``POST /v1/tasks`` body. ``task``: model, intake (canonical),
    callback_url, dry_run. Every problem is listed; the message names the parameter."""
    out: list[str] = []
    if not isinstance(body, dict):
        return None, [f"Request body must be a JSON object, got {_kind(body)}"]
    model = body.get("model")
    if model is None:
        out.append("Missing required parameter: model")
    elif not isinstance(model, str):
        out.append(f"Parameter model must be a string, got {_kind(model)}")
    elif model not in MODELS:
        out.append(f"Unknown model: {model[:100]!r} (available here: {', '.join(MODELS)})")
        model = None
    callback = body.get("callback_url")
    if callback is not None and not is_http_url(callback):
        out.append("Parameter callback_url must be an http(s) URL")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        out.append(f"Parameter dry_run must be a boolean, got {_kind(dry_run)}")
    inp = body.get("input")
    if inp is None:
        out.append("Missing required parameter: input")
        return None, out
    if not isinstance(inp, dict):
        out.append(f"Parameter input must be an object, got {_kind(inp)}")
        return None, out
    intake = _validate_input(inp, model if isinstance(model, str) else None, out)
    if out or intake is None or not isinstance(model, str):
        return None, out
    return {"model": model, "intake": intake, "callback_url": callback, "dry_run": dry_run}, out


def _validate_input(inp: dict[str, Any], model: str | None, out: list[str]) -> dict[str, Any] | None:
    omni = model == OMNI
    prompt = inp.get("prompt")
    if prompt is None:
        out.append("Missing required parameter: prompt")
    elif not isinstance(prompt, str):
        out.append(f"Parameter prompt must be a string, got {_kind(prompt)}")
    elif not prompt.strip():
        out.append("Parameter prompt must not be empty")
    elif len(prompt) > PROMPT_MAX:
        out.append(f"Parameter prompt must be at most {PROMPT_MAX} characters, got {len(prompt)}")
    video = inp.get("video_url")
    if video is None:
        out.append("Missing required parameter: video_url")
    elif not is_http_url(video):
        out.append("Parameter video_url must be an http(s) URL")
    modes = VIDEO_MODES.get(model or "", {})
    video_mode = inp.get("video_mode", DEFAULT_VIDEO_MODE.get(model or ""))
    if model is not None and video_mode not in modes:
        out.append(f"Parameter video_mode must be one of {', '.join(modes)}, got {video_mode!r}")
    quality = inp.get("mode", "std")
    if quality not in QUALITIES:
        out.append(f"Parameter mode must be one of std, pro, got {quality!r}")
    keep_audio = inp.get("keep_audio", False)
    if not isinstance(keep_audio, bool):
        out.append(f"Parameter keep_audio must be a boolean, got {_kind(keep_audio)}")
    elif omni and "keep_audio" in inp:
        out.append("Parameter keep_audio is not supported by kuaishou/kling-3.0-omni-video")
    aspect = inp.get("aspect_ratio")
    if aspect is not None:
        allowed = ("auto",) if omni else O1_ASPECT_RATIOS
        if aspect not in allowed:
            why = " (must be 'auto' when video_url is set)" if omni else ""
            out.append(f"Parameter aspect_ratio must be one of {', '.join(allowed)}, got {aspect!r}{why}")
    duration = inp.get("duration")
    if duration is not None:
        if not omni:
            out.append("Parameter duration is not supported by kuaishou/kling-o1-video-edit (output length "
                       "follows input length)")
        elif isinstance(duration, bool) or not isinstance(duration, int) \
                or not OMNI_DURATIONS[0] <= duration <= OMNI_DURATIONS[1]:
            out.append(f"Parameter duration must be an integer from {OMNI_DURATIONS[0]} to {OMNI_DURATIONS[1]}, "
                       f"got {duration!r}")
    images: list[str] = []
    raw_images = inp.get("image_urls")
    if raw_images is not None:
        if not isinstance(raw_images, list):
            out.append(f"Parameter image_urls must be an array, got {_kind(raw_images)}")
        else:
            for i, url in enumerate(raw_images):
                if is_http_url(url):
                    images.append(url)
                else:
                    out.append(f"Parameter image_urls[{i}] must be an http(s) URL")
    elements: list[dict[str, Any]] = []
    raw_elements = inp.get("elements")
    if raw_elements is not None:
        if not omni:
            out.append("Parameter elements is not supported by kuaishou/kling-o1-video-edit (O1 Edit only takes "
                       "image_urls)")
        elif not isinstance(raw_elements, list):
            out.append(f"Parameter elements must be an array, got {_kind(raw_elements)}")
        else:
            for i, el in enumerate(raw_elements):
                element = _element(el, i, out)
                if element is not None:
                    elements.append(element)
    count = len(raw_images) if isinstance(raw_images, list) else 0
    count += len(raw_elements) if isinstance(raw_elements, list) else 0
    if count > POOL:
        out.append(f"At most {POOL} image_urls and elements in total with a video_url, got {count}")
    if out or model is None or not isinstance(prompt, str) or not isinstance(video_mode, str):
        return None
    return {"prompt": normalize_prompt(prompt), "video": video, "keep_audio": keep_audio, "images": images,
            "elements": elements, "model": MODELS[model], "quality": quality, "edit_mode": modes[video_mode],
            "video_mode": video_mode, "aspect_ratio": aspect, "duration": duration}


def _element(el: Any, i: int, out: list[str]) -> dict[str, Any] | None:
    where = f"elements[{i}]"
    if not isinstance(el, dict):
        out.append(f"Parameter {where} must be an object, got {_kind(el)}")
        return None
    before = len(out)
    if el.get("type", "image") != "image":
        out.append(f"Parameter {where}.type must be 'image'")
    urls = el.get("image_urls")
    lo, hi = ELEMENT_IMAGES
    if urls is None:
        out.append(f"Missing required parameter: {where}.image_urls")
    elif not isinstance(urls, list) or not lo <= len(urls) <= hi:
        out.append(f"Parameter {where}.image_urls must be an array of {lo} to {hi} URLs")
    elif not all(is_http_url(u) for u in urls):
        out.append(f"Parameter {where}.image_urls must hold http(s) URLs")
    description = el.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > ELEMENT_DESCRIPTION_MAX):
        out.append(f"Parameter {where}.description must be a string of at most {ELEMENT_DESCRIPTION_MAX} characters")
    if len(out) > before or not isinstance(urls, list):
        return None
    return {"frontal_image": urls[0], "reference_images": list(urls[1:])}
