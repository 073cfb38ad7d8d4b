"""Semantic checks over a whole request, listing every problem at once.

``check_references`` needs only the request; ``check_against`` needs the provider's
capabilities. Neither touches the network; local media existence is checked here too so a
missing file is reported before anything is uploaded or submitted.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.prompt import find_refs
from kling_core.errors import Problem

URLS_ONLY = (
    "this provider takes http(s) URLs only: upload the file somewhere public and pass its URL, "
    "or install a plugin that provides an uploader (the kling_media_uploader hook)"
)


def is_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


def local_path(ref: str) -> Path | None:
    """The local path a media reference names, or None for an http(s) URL."""
    if is_url(ref):
        return None
    if ref.lower().startswith("file://"):
        return Path(unquote(urlparse(ref).path))
    return Path(ref).expanduser()


def is_utf8(text: str) -> bool:
    """Whether ``text`` can go out as UTF-8: a str made from bytes that were not UTF-8 (a shell's
    ``$'\\xff'``, decoded with surrogateescape) holds lone surrogates, which no host can be sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


NOT_UTF8 = "is not valid UTF-8 text (it holds bytes that do not decode as UTF-8)"


def check_text(request: EditRequest) -> list[Problem]:
    """Every text that goes to a host must be valid UTF-8: the prompt, element names and
    descriptions, option names and values, the webhook URL and media URLs. A local file path
    may hold any bytes the file system allows: it is opened, never sent as text."""
    texts: list[tuple[str, str | None]] = [("prompt", request.prompt), ("webhook_url", request.webhook_url)]
    problems: list[Problem] = []
    for name, value in request.options.items():
        if not is_utf8(name):  # it cannot name its own field: printed, it would show escapes
            problems.append(Problem("options", f"an option name {NOT_UTF8}"))
        elif isinstance(value, str):
            texts.append((f"options.{name}", value))
    for i, el in enumerate(request.elements):
        texts += [(f"elements[{i}].name", el.name), (f"elements[{i}].description", el.description)]
    texts += [(path, ref) for path, ref in request.media() if is_url(ref)]
    return [Problem(path, NOT_UTF8) for path, text in texts if text is not None and not is_utf8(text)] + problems


def check_references(request: EditRequest) -> list[Problem]:
    """Every ``@ImageN`` / ``@ElementN`` / ``@VideoN`` must name something the request holds
    (and every text in it must be sendable: :func:`check_text`)."""
    problems: list[Problem] = check_text(request)
    counts = {"image": len(request.images), "element": len(request.elements), "video": 1}
    plural = {"image": "images", "element": "elements", "video": "videos"}
    seen: set[tuple[str, int]] = set()
    for ref in find_refs(request.prompt):
        if (ref.kind, ref.index) in seen:
            continue
        seen.add((ref.kind, ref.index))
        have = counts[ref.kind]
        if ref.index < 1 or ref.index > have:
            given = f"{have} {plural[ref.kind] if have != 1 else ref.kind}"
            article = "an" if ref.kind[0] in "aeiou" else "a"
            problems.append(
                Problem("prompt", f"{ref.canonical} refers to {article} {ref.kind} the request does not contain ({given} given)")
            )
    return problems


def check_local_media(request: EditRequest) -> list[Problem]:
    problems: list[Problem] = []
    for path_name, ref in request.media():
        p = local_path(ref)
        if p is None:
            continue
        if not p.exists():
            problems.append(Problem(path_name, f"file not found: {p}"))
        elif not p.is_file():
            problems.append(Problem(path_name, f"not a regular file: {p}"))
    return problems


def check_against(request: EditRequest, caps: ProviderCapabilities, provider: str) -> list[Problem]:
    """What this provider cannot serve, field by field."""
    problems: list[Problem] = []
    model = caps.model(request.model)
    if model is None:
        offered = ", ".join(caps.model_names) or "none"
        return [Problem("model", f"{request.model!r} is not offered by provider {provider!r} (offers: {offered})")]

    if request.edit_mode not in model.edit_modes:
        problems.append(Problem("edit_mode", f"{request.edit_mode!r} is not supported (supported: {', '.join(model.edit_modes)})"))
    if request.quality not in model.qualities:
        problems.append(Problem("quality", f"{request.quality!r} is not supported (supported: {', '.join(model.qualities)})"))

    n_img, n_el = len(request.images), len(request.elements)
    if n_img + n_el > model.max_references:
        problems.append(
            Problem(
                "images",
                f"{n_img} images + {n_el} elements = {n_img + n_el} references, at most {model.max_references} with a video",
            )
        )
    if n_img > model.max_images:
        problems.append(Problem("images", f"{n_img} given, at most {model.max_images}"))
    if n_el and not model.accepts_elements:
        problems.append(Problem("elements", model.refusals.get("elements", "elements given as images are not accepted")))
    elif n_el > model.max_elements:
        problems.append(Problem("elements", f"{n_el} given, at most {model.max_elements}"))
    lo, hi = model.element_reference_images
    for i, el in enumerate(request.elements):
        k = len(el.reference_images)
        if k < lo or k > hi:
            problems.append(Problem(f"elements[{i}].reference_images", f"{k} given, {lo}–{hi} accepted"))
        if model.element_name_max and el.name and len(el.name) > model.element_name_max:
            problems.append(Problem(f"elements[{i}].name", f"{len(el.name)} characters, at most {model.element_name_max}"))
        if (
            model.element_description_max
            and el.description
            and len(el.description) > model.element_description_max
        ):
            problems.append(
                Problem(
                    f"elements[{i}].description",
                    f"{len(el.description)} characters, at most {model.element_description_max}",
                )
            )

    problems += _aspect_ratio_and_duration(request, model)
    if request.webhook_url is not None and not caps.accepts_webhook:
        problems.append(Problem("webhook_url", "this provider takes no per-request webhook"))
    if not caps.accepts_local_files:
        for path_name, ref in request.media():
            if not is_url(ref):
                problems.append(Problem(path_name, URLS_ONLY))
    return problems


def _mode_name(edit_mode: str) -> str:
    return "edits" if edit_mode == "edit" else f"{edit_mode} mode"


def _aspect_ratio_and_duration(request: EditRequest, model: ModelCapabilities) -> list[Problem]:
    """Both are taken per edit mode: Kling's base edit follows the input, its feature mode
    (our "reference") takes both and needs the aspect ratio."""
    problems: list[Problem] = []
    where = f"{request.model} {_mode_name(request.edit_mode)}"
    if request.aspect_ratio is not None:
        if not model.takes_aspect_ratio(request.edit_mode):
            why = model.refusals.get("aspect_ratio", "output follows the input")
            problems.append(Problem("aspect_ratio", f"not accepted by {where} ({why})"))
        elif request.aspect_ratio not in model.aspect_ratios:
            problems.append(Problem("aspect_ratio", f"{request.aspect_ratio!r} is not accepted by {where} "
                                                    f"(accepted: {', '.join(model.aspect_ratios)})"))
    elif request.edit_mode in model.aspect_ratio_required_modes:
        problems.append(Problem("aspect_ratio", f"required by {where} (one of {', '.join(model.aspect_ratios)})"))
    if request.duration is not None:
        lo, hi = model.durations
        if not model.takes_duration(request.edit_mode):
            why = model.refusals.get("duration", "output follows the input")
            problems.append(Problem("duration", f"not accepted by {where} ({why})"))
        elif not lo <= request.duration <= hi:
            problems.append(Problem("duration", f"{request.duration} s is outside {lo}–{hi} s for {where}"))
    return problems
