"""What the job log holds: one :class:`JobRecord` per job, with its :class:`JobEvent` history.

States, in order: ``submitting`` (claimed, the submit may be in flight) → ``uncertain`` (the
submit's outcome is unknown) or ``submitted`` (the host's job id is stored) → ``running`` →
``succeeded`` (the result is known but not saved yet) → ``saved``; or ``failed`` /
``cancelled``. Only ``saved``, ``failed`` and ``cancelled`` are finished: re-running the same
command picks up a job in any other state instead of submitting again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from kling_core.errors import ValidationError
from kling_core.provider import JobHandle
from kling_core.serialization import unstructure

JobState = Literal["submitting", "uncertain", "submitted", "running", "succeeded", "saved", "failed", "cancelled"]
STATES: tuple[JobState, ...] = (
    "submitting", "uncertain", "submitted", "running", "succeeded", "saved", "failed", "cancelled",
)
FINISHED: frozenset[str] = frozenset({"saved", "failed", "cancelled"})
UNFINISHED: frozenset[str] = frozenset(STATES) - FINISHED
# `kling jobs --state unfinished` (and the API's state="unfinished") selects these.
STATE_GROUPS: Mapping[str, frozenset[str]] = {"unfinished": UNFINISHED, "finished": FINISHED}


@attrs.frozen
class JobEvent:
    """One state change: the state entered, when (epoch seconds), and why where known."""

    state: str
    at: float
    detail: str | None = None


@attrs.frozen
class JobRecord:
    """One job as the log knows it. ``request`` is the canonical request (local media with digests)."""

    client_key: str
    provider: str
    state: JobState
    request_sha256: str
    created_at: float
    updated_at: float
    model: str | None = None
    take: int = 1
    base_key: str | None = None  # set when the key was derived from the request (re-run = resume)
    request: Mapping[str, Any] | None = None
    job_id: str | None = None
    handle: JobHandle | None = None
    result: Mapping[str, Any] | None = None  # the EditResult document, once known
    cost: Mapping[str, Any] | None = None  # what the host reported (credits, remaining credits)
    estimate: Mapping[str, Any] | None = None  # the price estimate when it was sent (kling_core.pricing)
    attempts: tuple[Mapping[str, Any], ...] = ()  # the hosts tried, in order (kling_core.client.fallback)
    output: str | None = None
    error: str | None = None
    owner: str | None = None  # "host:pid" of the process that claimed the submit
    events: tuple[JobEvent, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def created_on_host(self) -> bool:
        """Whether the host may hold a job for this record (False: refused before it existed)."""
        return not (self.state == "failed" and self.job_id is None)

    def to_document(self, *, events: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "client_key": self.client_key,
            "take": self.take,
            "provider": self.provider,
            "model": self.model,
            "state": self.state,
            "job_id": self.job_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "output": self.output,
            "error": self.error,
            "cost": dict(self.cost) if self.cost else None,
            "estimate": dict(self.estimate) if self.estimate else None,
            "attempts": [dict(a) for a in self.attempts],
            "request_sha256": self.request_sha256,
            "request": self.request,
            "handle": unstructure(self.handle) if self.handle is not None else None,
            "result": self.result,
        }
        if events:
            doc["events"] = [{"state": e.state, "at": e.at, "detail": e.detail} for e in self.events]
        return doc


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_AGE = 10 * 365 * 86400.0


def parse_age(value: str | float | int, *, field: str) -> float:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"2w"`` or seconds as a number -> seconds.

    Anything else (negative, inf, NaN, more than ten years, an unknown unit) is a
    ValidationError naming ``field``.
    """
    if isinstance(value, bool):
        raise ValidationError.single(field, f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _AGE.match(str(value).lower())
        if m is None:
            raise ValidationError.single(field, f"{value!r} is not a duration like 90s, 30m, 2h, 1d or 2w")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_AGE:
        raise ValidationError.single(field, f"{value!r} must be between 0 and 10 years")
    return seconds


def parse_states(values: str | tuple[str, ...] | list[str] | None, *, field: str = "state") -> frozenset[str] | None:
    """States (or the groups ``unfinished``/``finished``), comma-separated or repeated."""
    if values is None:
        return None
    items = [values] if isinstance(values, str) else list(values)
    out: set[str] = set()
    for item in items:
        for name in (n.strip() for n in item.split(",")):
            if not name:
                continue
            if name in STATE_GROUPS:
                out |= STATE_GROUPS[name]
            elif name in STATES:
                out.add(name)
            else:
                known = ", ".join([*STATES, *STATE_GROUPS])
                raise ValidationError.single(field, f"{name!r} is not a job state (one of: {known})")
    return frozenset(out) if out else None
