"""Kling's omni-video wire format as the emulator speaks it (shared/docs/providers.md §4, the
kling plugin's cassettes).

Every answer is the ``{"code", "message", "request_id", "data"}`` envelope; errors carry a
non-zero service code from Kling's table (§4.5) with the HTTP status the docs pair with it.
Shapes the docs do not show are **[INF]** here and in docs/emulator.md: the codes and
messages chosen for body problems (1200 for a body that is not a JSON object, 1201 naming the
field for a bad value), the duplicate ``external_task_id`` refusal (1201), the task-failure
messages for input problems, the 404/1203 for an unknown task or path, and the unit count.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from kling_core.contract.prompt import normalize_prompt

MODELS: dict[str, str] = {"kling-video-o1": "kling-o1", "kling-v3-omni": "kling-o3"}
REFER_TYPES: dict[str, str] = {"base": "edit", "feature": "reference"}
MODES = ("std", "pro")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
PROMPT_MAX = 2500
MAX_REFERENCES = 4  # images + elements with a reference video
EXTERNAL_ID_MAX = 128  # [INF]
_ID_CHARS = re.compile(r"^[A-Za-z0-9._:-]+$")

# Auth refusals (HTTP 401), messages as in the cassettes.
AUTH_MESSAGES: dict[int, str] = {
    1000: "Authentication failed",
    1001: "Authorization is empty",
    1002: "Authorization is invalid",
    1003: "Authorization is not yet valid",
    1004: "Authorization has expired",
}

# Scripted failures refused at submit: (HTTP status, service code, message) as in the cassettes.
SUBMIT_FAILURES: dict[str, tuple[int, int, str]] = {
    "rate_limited": (429, 1302, "Rate limit exceeded"),
    "insufficient_credits": (429, 1102, "Account balance not enough"),
    "server_error": (500, 5000, "Server internal error"),
}
# Scripted refusals that hold only while another task of this host is unfinished, as an account
# whose resource pack runs that many tasks at once: (HTTP status, service code, message), the
# message as Kling's docs show it (shared/docs/providers.md §4.5). Accepted once none is.
IN_FLIGHT_REFUSALS: dict[str, tuple[int, int, str]] = {
    "in_flight_limit": (429, 1303, "parallel task over resource pack limit"),
}
# Scripted failures of an accepted task: its task_status_msg (task_status failed).
JOB_FAILURE_MESSAGES: dict[str, str] = {
    "content_policy": "Failure to pass the risk control system",
    "completed_with_error": "elementReferList: size must be between 1 and 3",
}


class BadField(Exception):
    """A body the host refuses: HTTP 400 with ``code`` (1200 or 1201) and ``message``."""

    def __init__(self, message: str, code: int = 1201) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _string(body: dict[str, Any], key: str, *, required: bool = False, max_length: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadField(f"{key} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadField(f"{key} value is invalid")
    if max_length is not None and len(value) > max_length:
        raise BadField(f"{key} length must not exceed {max_length}")
    return value


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise BadField(f"{key} value is invalid")
    return value


def _url(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadField(f"{key} value is invalid")
    return value


def validate(body: Any) -> dict[str, Any]:
    """The canonical intake (plus ``external_task_id``, ``callback_url``) of a create-task body.

    Raises BadField for the first problem, as Kling names one field per answer.
    """
    if not isinstance(body, dict):
        raise BadField("Invalid request parameters", 1200)
    model_name = _choice(body, "model_name", tuple(MODELS), "kling-video-o1")
    assert model_name is not None
    prompt = _string(body, "prompt", required=True, max_length=PROMPT_MAX)
    assert prompt is not None
    mode = _choice(body, "mode", MODES, "pro")
    videos = body.get("video_list")
    if videos is None:
        raise BadField("video_list is required: the emulator serves video editing (omni-video with a video) only")
    if not isinstance(videos, list) or len(videos) != 1 or not isinstance(videos[0], dict):
        raise BadField("video_list value is invalid: exactly one video is supported")
    video = videos[0]
    video_url = _url(video.get("video_url"), "video_list[0].video_url")
    refer_type = _choice(video, "refer_type", tuple(REFER_TYPES), "base")
    sound = _choice(video, "keep_original_sound", ("yes", "no"), "yes")
    assert refer_type is not None
    images: list[str] = []
    raw_images = body.get("image_list")
    if raw_images is not None:
        if not isinstance(raw_images, list):
            raise BadField("image_list value is invalid")
        for i, item in enumerate(raw_images):
            if not isinstance(item, dict):
                raise BadField(f"image_list[{i}] value is invalid")
            images.append(_url(item.get("image_url"), f"image_list[{i}].image_url"))
            kind = item.get("type")
            if kind is not None:
                if kind not in ("first_frame", "end_frame"):
                    raise BadField(f"image_list[{i}].type value is invalid")
                if refer_type == "base":
                    raise BadField("first or end frames are not supported for video editing (refer_type base)")
    elements = body.get("element_list")
    if elements is not None:
        if not isinstance(elements, list):
            raise BadField("element_list value is invalid")
        if elements:
            # Element ids come from Kling's element library, which the emulator does not have.
            raise BadField("element_list: element_id does not exist")
    if len(images) > MAX_REFERENCES:
        raise BadField(f"image_list: at most {MAX_REFERENCES} images and elements with a reference video")
    if _choice(body, "sound", ("on", "off"), "off") == "on":
        raise BadField("sound can only be off when there is a reference video")
    _choice(body, "aspect_ratio", ASPECT_RATIOS, None)
    duration = body.get("duration")
    if duration is not None and (isinstance(duration, bool) or str(duration) not in {str(n) for n in range(3, 16)}):
        raise BadField("duration value is invalid")
    watermark = body.get("watermark_info")
    if watermark is not None and (not isinstance(watermark, dict)
                                  or not isinstance(watermark.get("enabled", False), bool)):
        raise BadField("watermark_info value is invalid")
    callback = _string(body, "callback_url")
    if callback is not None and urlsplit(callback).scheme.lower() not in ("http", "https"):
        raise BadField("callback_url value is invalid")
    external = _string(body, "external_task_id")
    if external is not None and (not external or len(external) > EXTERNAL_ID_MAX or not _ID_CHARS.match(external)):
        raise BadField("external_task_id value is invalid")
    return {
        "prompt": normalize_prompt(prompt), "video": video_url, "keep_audio": sound == "yes", "images": images,
        "elements": [], "model": MODELS[model_name], "quality": mode, "edit_mode": REFER_TYPES[refer_type],
        "model_name": model_name, "external_task_id": external, "callback_url": callback,
    }


def envelope(data: Any, request_id: str, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    doc: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if data is not None:
        doc["data"] = data
    return doc


def units(model: str, quality: str, seconds: float) -> str:
    """final_unit_deduction: billed per started second of the input, rounded [INF rates]."""
    rate = {"kling-o1": {"std": 0.6, "pro": 0.8}, "kling-o3": {"std": 0.6, "pro": 0.8}}[model][quality]
    return f"{max(3, round(seconds)) * rate:g}"
