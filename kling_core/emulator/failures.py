"""Scripted failures: the mock's (``kling_core_plugins.mock.failures``), chosen per request or host,
plus the outcomes only some hosts have (:data:`HOST_OUTCOMES`).

A request picks one with a tag in its prompt (``[fail:content_policy]``, removed before the
prompt is used) or with the ``X-Kling-Emulator-Fail`` header; a host's ``fail`` setting
applies to every job it gets. The request's choice wins; ``none`` switches a host's default
off for one request. Each host turns the failure into its own wire shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import attrs
from kling_core_plugins.mock.failures import FAILURES


@attrs.frozen
class HostOutcome:
    """A scripted outcome that only ``hosts`` can express (every host scripts the mock's failures)."""

    hosts: tuple[str, ...]
    # submit: the create is refused (no job); queued: the job ends while queued, never having run
    phase: Literal["submit", "queued"]
    description: str


HOST_OUTCOMES: Mapping[str, HostOutcome] = {
    "aborted": HostOutcome(
        ("replicate",), "queued",
        "the prediction ends `aborted` before it starts (as when a Cancel-After deadline passed): it never ran, "
        "`error` null, not charged"),
    "in_flight_limit": HostOutcome(
        ("kling",), "submit",
        "the create is refused with 429/1303 (parallel tasks over the resource pack limit) while another task of "
        "this host is unfinished, as an account whose pack runs one task at a time; accepted once none is"),
}
FAILURE_NAMES: tuple[str, ...] = (*FAILURES, *HOST_OUTCOMES)
# Outcomes that end a job while it is queued (the engine never starts it).
ENDS_QUEUED = frozenset(name for name, o in HOST_OUTCOMES.items() if o.phase == "queued")
FAIL_HEADER = "x-kling-emulator-fail"
_TAG = re.compile(r"\s*\[fail:([A-Za-z0-9_-]*)\]")


def failure_names(host: str | None = None) -> tuple[str, ...]:
    """The names ``host`` can script (None: every name of every host)."""
    if host is None:
        return FAILURE_NAMES
    return (*FAILURES, *(name for name, o in HOST_OUTCOMES.items() if host in o.hosts))


def unknown_failure(name: str, host: str | None, *, none: bool = False) -> str | None:
    """Why ``name`` is not a failure ``host`` can script, or None when it is (``none``: the
    off switch counts as a name, as it does in a request)."""
    if name in failure_names(host) or (none and name == "none"):
        return None
    known = ", ".join((*(("none",) if none else ()), *failure_names(host)))
    only = HOST_OUTCOMES.get(name)
    if only is not None:
        return f"{name!r} is scripted by {', '.join(only.hosts)} only (known here: {known})"
    return f"{name!r} is not a scripted failure (known: {known})"


class UnknownFailure(ValueError):
    def __init__(self, name: str, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.name = name
        self.where = where


def split_tag(prompt: str) -> tuple[str, str | None]:
    """The prompt without its ``[fail:NAME]`` tags, and the (last) name given."""
    names = _TAG.findall(prompt)
    if not names:
        return prompt, None
    return _TAG.sub("", prompt).strip(), names[-1]


def choose(prompt: str, headers: Mapping[str, str], host_default: str | None,
           host: str | None = None) -> tuple[str, str | None]:
    """(clean prompt, failure or None); raise UnknownFailure for a name that ``host`` cannot script."""
    clean, tagged = split_tag(prompt)
    header = headers.get(FAIL_HEADER)
    for name, where in ((tagged, "prompt tag [fail:...]"), (header, f"header {FAIL_HEADER}")):
        if name is not None:
            name = name.strip()
            if name in ("", "none"):
                return clean, None
            why = unknown_failure(name, host, none=True)
            if why is not None:
                raise UnknownFailure(name, where, why)
            return clean, name
    return clean, host_default
