"""Scripted failures: the mock's (``kling_core_plugins.mock.failures``), chosen per request or host.

A request picks one with a tag in its prompt (``[fail:content_policy]``, removed before the
prompt is used) or with the ``X-Kling-Emulator-Fail`` header; a host's ``fail`` setting
applies to every job it gets. The request's choice wins; ``none`` switches a host's default
off for one request. Each host turns the failure into its own wire shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kling_core_plugins.mock.failures import FAILURES

FAILURE_NAMES: tuple[str, ...] = tuple(FAILURES)
# Failures refused at submit (the host answers the POST with an error; no job exists).
SUBMIT_FAILURES = frozenset(name for name, f in FAILURES.items() if f.phase == "submit")
FAIL_HEADER = "x-kling-emulator-fail"
_TAG = re.compile(r"\s*\[fail:([A-Za-z0-9_-]*)\]")


class UnknownFailure(ValueError):
    def __init__(self, name: str, where: str) -> None:
        super().__init__(f"{where}: {name!r} is not a scripted failure (known: none, {', '.join(FAILURE_NAMES)})")
        self.name = name
        self.where = where


def split_tag(prompt: str) -> tuple[str, str | None]:
    """The prompt without its ``[fail:NAME]`` tags, and the (last) name given."""
    names = _TAG.findall(prompt)
    if not names:
        return prompt, None
    return _TAG.sub("", prompt).strip(), names[-1]


def choose(prompt: str, headers: Mapping[str, str], host_default: str | None) -> tuple[str, str | None]:
    """(clean prompt, failure or None); raise UnknownFailure for a name that is not one."""
    clean, tagged = split_tag(prompt)
    header = headers.get(FAIL_HEADER)
    for name, where in ((tagged, "prompt tag [fail:...]"), (header, f"header {FAIL_HEADER}")):
        if name is not None:
            name = name.strip()
            if name in ("", "none"):
                return clean, None
            if name not in FAILURES:
                raise UnknownFailure(name, where)
            return clean, name
    return clean, host_default
