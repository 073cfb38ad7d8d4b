"""Job status: a closed set of five states, tagged by ``state`` on the wire.

A host's "completed, but with an error" is :class:`Failed`, never :class:`Succeeded`.
"""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import field

from kling_core.contract.models import EditResult, _range

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@attrs.frozen
class JobError:
    """Why a job failed. ``kind`` names the canonical error type it maps to."""

    message: str
    code: str | None = None
    retryable: bool = False
    kind: Literal[
        "job_failed", "content_policy", "validation", "insufficient_credits", "timeout", "provider"
    ] = "job_failed"


@attrs.frozen
class Queued:
    job_id: str
    provider: str
    position: int | None = field(default=None, validator=_range(0, 2**31))
    state: Literal["queued"] = field(default="queued", init=False)


@attrs.frozen
class Running:
    job_id: str
    provider: str
    progress: float | None = field(default=None, validator=_range(0, 100))  # percent, where reported
    logs: tuple[str, ...] = field(factory=tuple, converter=tuple)
    state: Literal["running"] = field(default="running", init=False)


@attrs.frozen
class Succeeded:
    job_id: str
    provider: str
    result: EditResult
    state: Literal["succeeded"] = field(default="succeeded", init=False)


@attrs.frozen
class Failed:
    job_id: str
    provider: str
    error: JobError
    state: Literal["failed"] = field(default="failed", init=False)


@attrs.frozen
class Cancelled:
    job_id: str
    provider: str
    state: Literal["cancelled"] = field(default="cancelled", init=False)


@attrs.frozen
class Completed:
    """The host finished the job; its result is fetched next.

    A step inside a hosted provider, between the host's "completed" and our "succeeded" (as
    fal-client separates ``status()`` from ``result()``): ``Provider.status`` never returns it.
    ``error``: the host called the job done *with* this error; the result is still fetched, for
    the host's detail, and the job ends :class:`Failed` whatever it holds.
    """

    job_id: str
    provider: str
    error: JobError | None = None
    state: Literal["completed"] = field(default="completed", init=False)


JobStatus = Queued | Running | Succeeded | Failed | Cancelled
# What a hosted provider's status parser may return: a status, or "fetch the result now".
HostStatus = JobStatus | Completed
STATUS_TYPES: tuple[type, ...] = (Queued, Running, Succeeded, Failed, Cancelled)


def is_terminal(status: JobStatus) -> bool:
    return status.state in TERMINAL
