"""Hypothesis strategies for canonical edit requests a provider can, or cannot, serve.

Media are https URLs (every host takes them), so builders can be checked without uploads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import assume
from hypothesis import strategies as st

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import ASPECT_RATIO_VALUES, MAX_IMAGES, MODELS, EditRequest, Element

_WORDS = st.sampled_from(
    ["make", "the", "sky", "a", "sunset", "turn", "car", "red", "watercolor", "style", "keep", "face", "ÿ", "😀", "\"quoted\""]
)


def media_urls(kind: str = "img") -> st.SearchStrategy[str]:
    ext = "mp4" if kind == "video" else "png"
    return st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True).map(lambda s: f"https://media.example.com/{kind}/{s}.{ext}")


def _prompt(n_images: int, n_elements: int) -> st.SearchStrategy[str]:
    refs = ["@Video1"] + [f"@Image{i}" for i in range(1, n_images + 1)] + [f"@Element{i}" for i in range(1, n_elements + 1)]
    token = _WORDS | st.sampled_from(refs)
    return st.lists(token, min_size=1, max_size=25).map(" ".join)


def _text(lo: int, hi: int | None) -> st.SearchStrategy[str]:
    top = min(hi or 40, 40)
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=lo, max_size=top).filter(
        lambda s: bool(s.strip())
    )


@st.composite
def _element(draw: st.DrawFn, model: ModelCapabilities) -> Element:
    lo, hi = model.element_reference_images
    refs = draw(st.lists(media_urls(), min_size=max(1, lo), max_size=max(1, min(hi, 3))))
    name = draw(st.none() | _text(1, min(model.element_name_max or 64, 64)))
    desc = draw(st.none() | _text(1, min(model.element_description_max or 500, 500)))
    return Element(frontal_image=draw(media_urls()), reference_images=tuple(refs), name=name, description=desc)


def _count_up_to(top: int) -> st.SearchStrategy[int]:
    """0..top, with the boundary drawn often: full reference pools are where hosts differ."""
    return st.one_of(st.just(top), st.integers(0, top))


@st.composite
def servable_requests(draw: st.DrawFn, caps: ProviderCapabilities) -> EditRequest:
    """Requests inside the capability data (the provider's own ``check`` may still refuse)."""
    model = draw(st.sampled_from(caps.models))
    n_el = draw(_count_up_to(min(model.max_elements, model.max_references, 7))) if model.accepts_elements else 0
    n_img = draw(_count_up_to(max(0, min(model.max_images, model.max_references - n_el, MAX_IMAGES))))
    elements = tuple(draw(_element(model)) for _ in range(n_el))
    kw: dict[str, Any] = dict(
        prompt=draw(_prompt(n_img, n_el)),
        video=draw(media_urls("video")),
        model=model.model,
        images=tuple(draw(st.lists(media_urls(), min_size=n_img, max_size=n_img))),
        elements=elements,
        keep_audio=draw(st.booleans()),
        quality=draw(st.sampled_from(model.qualities)),
        edit_mode=draw(st.sampled_from(model.edit_modes)),
        client_key=draw(st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)),
    )
    mode = kw["edit_mode"]
    if model.takes_aspect_ratio(mode):  # per edit mode, from the model's own values
        ratios = st.sampled_from(model.aspect_ratios)
        kw["aspect_ratio"] = draw(ratios if mode in model.aspect_ratio_required_modes else st.none() | ratios)
    if model.takes_duration(mode):
        lo, hi = model.durations
        kw["duration"] = draw(st.none() | st.sampled_from([d for d in (lo, 5, 10, hi) if lo <= d <= hi]))
    if caps.accepts_webhook:
        kw["webhook_url"] = draw(st.none() | st.just("https://hooks.example.com/kling"))
    return EditRequest(**kw)


def _mutations(caps: ProviderCapabilities) -> list[tuple[str, Callable[[EditRequest, ModelCapabilities], EditRequest]]]:
    """Ways to push a servable request outside this provider's capabilities."""
    out: list[tuple[str, Callable[[EditRequest, ModelCapabilities], EditRequest]]] = []
    missing = [m for m in MODELS if caps.model(m) is None]
    if missing:
        other: Any = missing[0]
        out.append(("model", lambda r, m: attrs.evolve(r, model=other)))

    def too_many(r: EditRequest, m: ModelCapabilities) -> EditRequest:
        n = min(MAX_IMAGES, max(m.max_references, m.max_images) + 1)
        return attrs.evolve(r, images=tuple(f"https://media.example.com/img/x{i}.png" for i in range(n)), elements=())

    if any(max(m.max_references, m.max_images) < MAX_IMAGES for m in caps.models):
        out.append(("images", too_many))
    out.append(("edit_mode", lambda r, m: attrs.evolve(r, edit_mode=next((e for e in ("edit", "reference") if e not in m.edit_modes), r.edit_mode))))
    out.append(("quality", lambda r, m: attrs.evolve(r, quality=next((q for q in ("std", "pro") if q not in m.qualities), r.quality))))
    out.append(("aspect_ratio", _bad_aspect_ratio))
    out.append(("duration", _bad_duration))
    if not caps.accepts_webhook:
        out.append(("webhook_url", lambda r, m: attrs.evolve(r, webhook_url="https://hooks.example.com/k")))
    if not caps.accepts_local_files:
        out.append(("video", lambda r, m: attrs.evolve(r, video="/tmp/clip.mp4")))
    out.append(("prompt", lambda r, m: attrs.evolve(r, prompt=r.prompt + f" @Image{len(r.images) + 1}")))
    return out


def _bad_aspect_ratio(r: EditRequest, m: ModelCapabilities) -> EditRequest:
    """One this model and edit mode do not take (any, where it takes none; else another value)."""
    if not m.takes_aspect_ratio(r.edit_mode):
        return attrs.evolve(r, aspect_ratio="16:9")
    other = next((a for a in ASPECT_RATIO_VALUES if a not in m.aspect_ratios), None)
    return r if other is None else attrs.evolve(r, aspect_ratio=other)  # type: ignore[arg-type]


def _bad_duration(r: EditRequest, m: ModelCapabilities) -> EditRequest:
    if not m.takes_duration(r.edit_mode):
        return attrs.evolve(r, duration=5)
    lo, hi = m.durations
    return attrs.evolve(r, duration=hi + 1) if hi < 15 else attrs.evolve(r, duration=lo - 1) if lo > 3 else r


@st.composite
def unservable_requests(draw: st.DrawFn, caps: ProviderCapabilities) -> tuple[str, EditRequest]:
    """(the field pushed out of bounds, a request that must be refused before any I/O)."""
    base = draw(servable_requests(caps))
    model = caps.model(base.model)
    assert model is not None
    name, mutate = draw(st.sampled_from(_mutations(caps)))
    mutated = mutate(base, model)
    assume(mutated != base)  # e.g. every edit mode supported: nothing to push out of bounds
    return name, mutated
