"""fal's wire format as the emulator speaks it (shared/docs/providers.md §1, the fal cassettes).

Sources are marked as in providers.md; shapes the docs do not show are **[INF]** here and in
docs/emulator.md:

- error bodies: model errors ``{"detail": [{"loc", "msg", "type", "url", "ctx"?, "input"?}]}``
  (422, ``X-Fal-Retryable``) [DOC]; request errors ``{"detail": "...", "error_type": "..."}``
  with ``X-Fal-Error-Type`` [DOC]; ``401 {"detail": "Unauthorized"}`` [3P];
- body validation follows pydantic v2 (fal apps are FastAPI apps): ``missing``,
  ``string_type``, ``bool_type``/``bool_parsing``, ``list_type``, ``too_long``/``too_short``,
  ``string_too_long``/``string_too_short``, ``json_invalid``, ``model_attributes_type`` [INF];
- media problems are found by the runner, so they surface on the result GET (422), as fal's
  own queue does for the O1 edit (cassette ``result-422-failed``) [3P].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

ERRORS_URL = "https://docs.fal.ai/errors/#"
PROMPT_MAX = 2500
ASPECT_RATIOS = ("auto", "16:9", "9:16", "1:1")


@attrs.frozen
class Endpoint:
    model: str  # canonical model
    edit_mode: str
    quality: str
    keep_audio_default: bool  # O1 false, O3 true (providers.md §1.10)
    reference: bool = False  # the reference endpoints also take duration and aspect_ratio


APP = "fal-ai/kling-video"
ENDPOINTS: dict[str, Endpoint] = {
    "fal-ai/kling-video/o1/video-to-video/edit": Endpoint("kling-o1", "edit", "pro", False),
    "fal-ai/kling-video/o1/standard/video-to-video/edit": Endpoint("kling-o1", "edit", "std", False),
    "fal-ai/kling-video/o1/video-to-video/reference": Endpoint("kling-o1", "reference", "pro", False, True),
    "fal-ai/kling-video/o1/standard/video-to-video/reference": Endpoint("kling-o1", "reference", "std", False, True),
    "fal-ai/kling-video/o3/pro/video-to-video/edit": Endpoint("kling-o3", "edit", "pro", True),
    "fal-ai/kling-video/o3/standard/video-to-video/edit": Endpoint("kling-o3", "edit", "std", True),
    # Listed beside the edit on fal's O3 pages (providers.md §8); the schema was not captured [INF].
    "fal-ai/kling-video/o3/pro/video-to-video/reference": Endpoint("kling-o3", "reference", "pro", True, True),
    "fal-ai/kling-video/o3/standard/video-to-video/reference": Endpoint("kling-o3", "reference", "std", True, True),
}
NAMESPACES = ("workflows", "comfy")  # fal_client: a namespace comes before owner/app


def app_of(model_id: str) -> str:
    """owner/app (with a namespace prefix): what status, result and cancel URLs use."""
    parts = model_id.split("/")
    n = 3 if parts and parts[0] in NAMESPACES else 2
    return "/".join(parts[:n])


# -- error bodies ----------------------------------------------------------------------------
def detail(loc: Sequence[str | int], msg: str, type_: str, *, ctx: Mapping[str, Any] | None = None,
           input_: Any = attrs.NOTHING) -> dict[str, Any]:
    entry: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_, "url": ERRORS_URL + type_}
    if ctx:
        entry["ctx"] = dict(ctx)
    if input_ is not attrs.NOTHING:
        entry["input"] = input_
    return entry


def request_error(message: str, error_type: str) -> dict[str, Any]:
    return {"detail": message, "error_type": error_type}


def field_loc(field: str) -> list[str | int]:
    """A canonical field path as fal's ``loc``: ``images[0]`` -> ``["body", "image_urls", 0]``."""
    import re

    names = {"video": "video_url", "images": "image_urls", "elements": "elements",
             "frontal_image": "frontal_image_url", "reference_images": "reference_image_urls"}
    loc: list[str | int] = ["body"]
    for name, index in re.findall(r"([a-z_]+)(?:\[(\d+)\])?", field):
        loc.append(names.get(name, name))
        if index:
            loc.append(int(index))
    return loc


# -- body validation (pydantic v2 wording) -------------------------------------------------------
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def _bool(value: Any, loc: list[str | int], out: list[dict[str, Any]]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        out.append(detail(loc, "Input should be a valid boolean, unable to interpret input", "bool_parsing",
                          input_=value))
        return None
    out.append(detail(loc, "Input should be a valid boolean", "bool_type", input_=value))
    return None


def _str(value: Any, loc: list[str | int], out: list[dict[str, Any]], *, max_length: int | None = None,
         min_length: int = 0) -> str | None:
    if not isinstance(value, str):
        out.append(detail(loc, "Input should be a valid string", "string_type", input_=value))
        return None
    if len(value) < min_length:
        out.append(detail(loc, f"String should have at least {min_length} character", "string_too_short",
                          ctx={"min_length": min_length}, input_=value))
        return None
    if max_length is not None and len(value) > max_length:
        out.append(detail(loc, f"String should have at most {max_length} characters", "string_too_long",
                          ctx={"max_length": max_length}, input_=value[:100]))
        return None
    return value


def _list(value: Any, loc: list[str | int], out: list[dict[str, Any]], *, min_length: int = 0,
          max_length: int | None = None) -> list[Any] | None:
    if not isinstance(value, list):
        out.append(detail(loc, "Input should be a valid list", "list_type", input_=value))
        return None
    if len(value) < min_length:
        out.append(detail(loc, f"List should have at least {min_length} item after validation, not {len(value)}",
                          "too_short", ctx={"field_type": "List", "min_length": min_length,
                                            "actual_length": len(value)}))
        return None
    if max_length is not None and len(value) > max_length:
        out.append(detail(loc, f"List should have at most {max_length} items after validation, not {len(value)}",
                          "too_long", ctx={"field_type": "List", "max_length": max_length,
                                           "actual_length": len(value)}))
        return None
    return value


def validate(body: Any, endpoint: Endpoint) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(intake fields, problems) for a submit body: the O1/O3 edit input schema (§1.10)."""
    out: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        out.append(detail(["body"], "Input should be a valid dictionary or object to extract fields from",
                          "model_attributes_type", input_=body if not isinstance(body, (list, dict)) else None))
        return None, out
    prompt = video = None
    if "prompt" not in body:
        out.append(detail(["body", "prompt"], "Field required", "missing"))
    else:
        prompt = _str(body["prompt"], ["body", "prompt"], out, max_length=PROMPT_MAX, min_length=1)
    if "video_url" not in body:
        out.append(detail(["body", "video_url"], "Field required", "missing"))
    else:
        video = _str(body["video_url"], ["body", "video_url"], out, min_length=1)
    keep_audio: bool | None = endpoint.keep_audio_default
    if body.get("keep_audio") is not None:
        keep_audio = _bool(body["keep_audio"], ["body", "keep_audio"], out)
    images: list[str] = []
    if body.get("image_urls") is not None:
        raw = _list(body["image_urls"], ["body", "image_urls"], out)
        for i, ref in enumerate(raw or []):
            ok = _str(ref, ["body", "image_urls", i], out, min_length=1)
            if ok is not None:
                images.append(ok)
    elements: list[dict[str, Any]] = []
    if body.get("elements") is not None:
        raw_elements = _list(body["elements"], ["body", "elements"], out)
        for i, el in enumerate(raw_elements or []):
            loc: list[str | int] = ["body", "elements", i]
            if not isinstance(el, dict):
                out.append(detail(loc, "Input should be a valid dictionary or object to extract fields from",
                                  "model_attributes_type", input_=el))
                continue
            frontal = None
            if "frontal_image_url" not in el:
                out.append(detail([*loc, "frontal_image_url"], "Field required", "missing"))
            else:
                frontal = _str(el["frontal_image_url"], [*loc, "frontal_image_url"], out, min_length=1)
            refs = _list(el.get("reference_image_urls", []), [*loc, "reference_image_urls"], out,
                         min_length=1, max_length=3)
            ref_ok = [r for j, r in enumerate(refs or [])
                      if _str(r, [*loc, "reference_image_urls", j], out, min_length=1) is not None]
            if frontal is not None and refs is not None and len(ref_ok) == len(refs):
                elements.append({"frontal_image": frontal, "reference_images": ref_ok})
    if len(images) + len(elements) > 4:
        out.append(detail(["body"], f"Maximum 4 total (elements + reference images) when using video, "
                                    f"got {len(images) + len(elements)}", "too_long",
                          ctx={"max_length": 4, "actual_length": len(images) + len(elements)}))
    if endpoint.reference:
        if body.get("aspect_ratio") is not None and body["aspect_ratio"] not in ASPECT_RATIOS:
            out.append(detail(["body", "aspect_ratio"], "Input should be " + ", ".join(f"'{a}'" for a in ASPECT_RATIOS),
                              "literal_error", ctx={"expected": ", ".join(ASPECT_RATIOS)},
                              input_=body["aspect_ratio"]))
        duration = body.get("duration")
        if duration is not None and (isinstance(duration, bool) or str(duration) not in [str(n) for n in range(3, 11)]):
            out.append(detail(["body", "duration"], "Input should be '3' to '10'", "literal_error",
                              ctx={"expected": "'3'..'10'"}, input_=duration))
    if out or prompt is None or video is None or keep_audio is None:
        return None, out
    intake = {"prompt": prompt, "video": video, "keep_audio": keep_audio, "images": images, "elements": elements,
              "model": endpoint.model, "quality": endpoint.quality, "edit_mode": endpoint.edit_mode}
    return intake, out


# -- scripted failures in fal's shapes ----------------------------------------------------------
SUBMIT_FAILURE_RESPONSES: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    # [3P] fal-ai/fal issues #1112, #1147: a used-up balance is 403 "User is locked".
    "insufficient_credits": (403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
                                             "fal.ai/dashboard/billing."}, {}),
    # [DOC] request-errors: internal_error 500; X-Fal-Error-Type repeats it.
    "server_error": (500, request_error("Internal server error", "internal_error"),
                     {"x-fal-error-type": "internal_error"}),
}
RATE_LIMITED = {"detail": "Rate limit exceeded"}  # cassette error-429-submit [3P]

# Job failures, as the result GET answers them (cassettes result-content-policy, result-422-failed).
JOB_FAILURE_DETAILS: dict[str, dict[str, Any]] = {
    "content_policy": detail(["body", "prompt"], "The content could not be processed because it was flagged by "
                             "the content checker", "content_policy_violation"),
    "completed_with_error": detail(["body", "elements", 0, "reference_image_urls"],
                                   "elementReferList: size must be between 1 and 3", "value_error"),
}
