"""The provider-neutral edit contract: request, result and their parts.

Validators here check only *shape* (what the JSON Schemas in ``schemas/`` also express), so
the schema/model agreement tests can compare the two. Semantic checks that need the whole
request or a provider's capabilities (prompt references, reference pools, limits) live in
:mod:`kling_core.contract.checks` and report every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
from attrs import field
from attrs import validators as v

from kling_core.contract.prompt import normalize_prompt

ModelName = Literal["kling-o1", "kling-o3"]
Quality = Literal["std", "pro"]
EditMode = Literal["edit", "reference"]
AspectRatio = Literal["16:9", "9:16", "1:1", "auto"]

MODELS: tuple[str, ...] = ("kling-o1", "kling-o3")
QUALITIES: tuple[str, ...] = ("std", "pro")
EDIT_MODES: tuple[str, ...] = ("edit", "reference")
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1")
# "auto" (the host picks, e.g. from the video) only where a model says so (ModelCapabilities.aspect_ratios).
ASPECT_RATIO_VALUES: tuple[str, ...] = (*ASPECT_RATIOS, "auto")

PROMPT_MAX = 2500
MAX_IMAGES = 7  # Kling's ceiling without a video; the per-model pool (4) is a capability.
MAX_ELEMENTS = 7
ELEMENT_REFS_MIN = 1
ELEMENT_REFS_MAX = 3
NAME_MAX = 64
DESCRIPTION_MAX = 500
# The same patterns stand in schemas/edit-request.schema.json; both sides use re.search.
# A URL may hold spaces and parentheses in its path, as the hosts' own examples write them
# ("…24fps (1).mp4"); they are percent-encoded on construction (``encode_url``).
MEDIA_PATTERN = (r"^(?:[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+(?:[/?#](?:[^\r\n]*\S)?)?"
                 r"|[Ff][Ii][Ll][Ee]://\S(?:[^\r\n]*\S)?|(?!\S*://)\S[^\n]*)$")
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$"
CLIENT_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


_URL_UNSAFE = re.compile(r"[^\x21-\x7e]|[\"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})")


def encode_url(url: str) -> str:
    """An http(s) URL as it goes on the wire: what a URL may not hold raw (spaces, quotes,
    non-ASCII...) percent-encoded after the host; existing ``%XX`` escapes and ``()`` kept.

    ``https://h/clip (1).mp4`` -> ``https://h/clip%20(1).mp4``; applying it twice changes nothing.
    """
    head, sep, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    tail = _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), rest[cut:])
    return head + sep + rest[:cut] + tail


def _media(value: Any) -> Any:
    """A valid http(s) media URL, encoded; anything else as given (the validator judges it)."""
    if isinstance(value, str) and value[:4].lower() == "http" and re.search(MEDIA_PATTERN, value):
        try:
            return encode_url(value)
        except UnicodeEncodeError:  # not UTF-8 text: kept as given for checks.check_text to name
            return value
    return value


def _media_tuple(value: Any) -> Any:
    return tuple(_media(v) for v in value) if isinstance(value, (list, tuple)) else value


def _media_ref(inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if re.search(MEDIA_PATTERN, value):
        return
    if not value.strip():
        raise ValueError("must be a URL or a file path, got an empty string")
    if "://" in value.split()[0]:
        scheme = value.split()[0].split("://", 1)[0]
        if scheme.lower() in ("http", "https", "file"):
            raise ValueError(f"not a valid {scheme} URL: a host after '://', no space before or after it, "
                             "no line break")
        raise ValueError(f"scheme {scheme!r} is not supported: use http(s)://, file:// or a path")
    raise ValueError("must be an http(s) URL, a file:// URL or a local path (no leading space)")


def _pattern(pattern: str, what: str) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and not re.search(pattern, value):
            raise ValueError(f"{value!r} is not {what}")

    return check


def _count(lo: int, hi: int, what: str) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        n = len(value)
        if n < lo:
            raise ValueError(f"{n} given, at least {lo} {what}")
        if n > hi:
            raise ValueError(f"{n} given, at most {hi}")

    return check


def _length(lo: int, hi: int) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        n = len(value)
        if n < lo:
            raise ValueError("must not be empty" if lo == 1 else f"{n} characters, at least {lo}")
        if n > hi:
            raise ValueError(f"{n} characters, at most {hi}")

    return check


def _not_blank(inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    # "" is _length's "must not be empty"; only whitespace says nothing to the model either.
    if value and not value.strip():
        raise ValueError(f"'{attribute.name}' must not be blank: it holds only whitespace")


def _range(lo: float, hi: float) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and not lo <= value <= hi:
            raise ValueError(f"{value} is out of range {lo:g}–{hi:g}")

    return check


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")

    return check


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else value


@attrs.frozen
class Element:
    """A character or object: a frontal image plus 1–3 reference images."""

    frontal_image: str = field(converter=_media, validator=_media_ref)
    reference_images: tuple[str, ...] = field(
        converter=_media_tuple,
        validator=[
            v.deep_iterable(_media_ref),
            _count(ELEMENT_REFS_MIN, ELEMENT_REFS_MAX, "(an element needs reference images)"),
        ],
    )
    name: str | None = field(default=None, validator=_length(1, NAME_MAX))
    description: str | None = field(default=None, validator=_length(1, DESCRIPTION_MAX))


@attrs.frozen
class EditRequest:
    """One video-to-video edit, in the provider-neutral contract.

    ``prompt`` is stored in the canonical reference spelling (``@Image1``); any accepted
    spelling given on input is normalized on construction.
    """

    prompt: str = field(validator=[_length(1, PROMPT_MAX), _not_blank])
    video: str = field(converter=_media, validator=_media_ref)
    model: ModelName = field(default="kling-o1", validator=_one_of(MODELS))
    images: tuple[str, ...] = field(
        factory=tuple, converter=_media_tuple, validator=[v.deep_iterable(_media_ref), _count(0, MAX_IMAGES, "")]
    )
    elements: tuple[Element, ...] = field(
        factory=tuple,
        converter=_tuple,
        validator=[v.deep_iterable(v.instance_of(Element)), _count(0, MAX_ELEMENTS, "")],
    )
    keep_audio: bool = field(default=False, validator=v.instance_of(bool))
    quality: Quality = field(default="pro", validator=_one_of(QUALITIES))
    edit_mode: EditMode = field(default="edit", validator=_one_of(EDIT_MODES))
    aspect_ratio: AspectRatio | None = field(default=None, validator=_one_of(ASPECT_RATIO_VALUES))
    duration: int | None = field(default=None, validator=_range(3, 15))
    webhook_url: str | None = field(default=None, validator=_pattern(URL_PATTERN, "an http(s) URL"))
    client_key: str | None = field(
        default=None, validator=_pattern(CLIENT_KEY_PATTERN, "a key of 1–128 letters, digits, '.', '_', ':', '-'")
    )
    # Provider-specific knobs (e.g. the mock's scripted failure). Flat scalars only, so they
    # serialize the same on every host and in the schema.
    options: Mapping[str, str | int | float | bool] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        # Normalize after validation, so the length limit applies to the prompt as given.
        object.__setattr__(self, "prompt", normalize_prompt(self.prompt))

    def map_media(self, fn: Callable[[str], str]) -> EditRequest:
        """A copy with every media reference passed through ``fn`` (e.g. local path -> URL)."""
        return attrs.evolve(
            self,
            video=fn(self.video),
            images=tuple(fn(i) for i in self.images),
            elements=tuple(
                attrs.evolve(e, frontal_image=fn(e.frontal_image), reference_images=tuple(fn(r) for r in e.reference_images))
                for e in self.elements
            ),
        )

    def media(self) -> list[tuple[str, str]]:
        """Every media reference with its field path, video first."""
        out = [("video", self.video)]
        out += [(f"images[{i}]", ref) for i, ref in enumerate(self.images)]
        for i, el in enumerate(self.elements):
            out.append((f"elements[{i}].frontal_image", el.frontal_image))
            out += [
                (f"elements[{i}].reference_images[{j}]", ref)
                for j, ref in enumerate(el.reference_images)
            ]
        return out


@attrs.frozen
class OutputVideo:
    url: str
    content_type: str | None = "video/mp4"
    file_name: str | None = None
    file_size: int | None = field(default=None, validator=_range(0, 2**63))
    path: str | None = None  # set once saved locally


@attrs.frozen
class Timings:
    """Seconds since the epoch; durations are derived so they cannot disagree."""

    submitted_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None

    @property
    def total_seconds(self) -> float | None:
        if self.submitted_at is None or self.completed_at is None:
            return None
        return self.completed_at - self.submitted_at


@attrs.frozen
class Cost:
    """What the host reported; each part only where the host reports it."""

    credits: float | None = None
    amount: float | None = None
    currency: str | None = None
    remaining_credits: float | None = None


@attrs.frozen
class EditResult:
    video: OutputVideo
    job_id: str
    provider: str
    model: str
    timings: Timings = field(factory=Timings)
    cost: Cost | None = None
    # What was applied, for hosts (like the mock) that report it.
    report: Mapping[str, Any] | None = None
