"""Prompt references: one canonical spelling in, each host's spelling out.

Canonical: ``@Video1``, ``@Image1..N``, ``@Element1..N``. Accepted on input: the spellings the
hosts document (``@image1``, ``@image_1``, ``@Image_1``, ``<<<image_1>>>``), case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

import attrs

RefKind = Literal["video", "image", "element"]

_KINDS = "video|image|element"
# One pattern for every accepted spelling; the word boundary stops "@Image12abc" from
# being read as "@Image12" followed by text that looks like part of a name.
_REF_RE = re.compile(
    rf"<<<\s*(?P<k1>{_KINDS})_(?P<n1>\d+)\s*>>>|@(?P<k2>{_KINDS})_?(?P<n2>\d+)(?![\w])",
    re.IGNORECASE,
)

_CANONICAL = {"video": "Video", "image": "Image", "element": "Element"}


@attrs.frozen
class Ref:
    kind: RefKind
    index: int  # 1-based, as written

    @property
    def canonical(self) -> str:
        return f"@{_CANONICAL[self.kind]}{self.index}"


def _match_ref(m: re.Match[str]) -> Ref:
    kind = (m.group("k1") or m.group("k2")).lower()
    index = int(m.group("n1") or m.group("n2"))
    return Ref(kind, index)  # type: ignore[arg-type]


def find_refs(prompt: str) -> list[Ref]:
    """Every reference in the prompt, in order of appearance, in any accepted spelling."""
    return [_match_ref(m) for m in _REF_RE.finditer(prompt)]


def normalize_prompt(prompt: str) -> str:
    """Rewrite every accepted spelling into the canonical one. Idempotent."""
    return _REF_RE.sub(lambda m: _match_ref(m).canonical, prompt)


def render_prompt(prompt: str, spell: Callable[[Ref], str]) -> str:
    """Rewrite references with a host's spelling, e.g. ``lambda r: f"<<<{r.kind}_{r.index}>>>"``."""
    return _REF_RE.sub(lambda m: spell(_match_ref(m)), prompt)


# Host spellings, as data so plugins pick one instead of writing their own regex.
def spell_canonical(ref: Ref) -> str:
    return ref.canonical


def spell_snake(ref: Ref) -> str:
    """``@image_1`` (Unifically)."""
    return f"@{ref.kind}_{ref.index}"


def spell_triple_angle(ref: Ref) -> str:
    """``<<<image_1>>>`` (Kling's own API)."""
    return f"<<<{ref.kind}_{ref.index}>>>"


SPELLINGS: dict[str, Callable[[Ref], str]] = {
    "canonical": spell_canonical,
    "snake": spell_snake,
    "triple_angle": spell_triple_angle,
}
