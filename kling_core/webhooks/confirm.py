"""Trusting a callback only as far as the host confirms it: a status GET, then the job log.

A callback (signed or not) only says "look now". The job's state is read from the host with
the provider's own follow step, the path a waiting client polls (the result fetch included),
and what the host says is recorded as the client's wait loop records it. A finished job's
state is sticky, and a state is never moved back (running after succeeded).
"""

from __future__ import annotations

from typing import Any

from kling_core.contract.status import Cancelled, Failed, JobStatus, Running, Succeeded
from kling_core.joblog import FINISHED, JobLog, JobRecord
from kling_core.serialization import unstructure

# States a confirmed status may move a job out of, per state it moves to.
_FROM: dict[str, frozenset[str]] = {
    "running": frozenset({"submitted", "uncertain"}),
    "succeeded": frozenset({"submitted", "uncertain", "running"}),
    "failed": frozenset({"submitted", "uncertain", "running"}),
    "cancelled": frozenset({"submitted", "uncertain", "running"}),
}
# No status GET for these: the job log already holds the outcome.
SETTLED: frozenset[str] = FINISHED | {"succeeded"}
DETAIL = "confirmed by a status look-up after a callback"


def record_confirmed(journal: JobLog, record: JobRecord, status: JobStatus) -> str:
    """Write what the host confirmed into the job log; the job's state afterwards."""
    state = status.state if status.state in _FROM else None
    if state is None or record.state not in _FROM[state]:
        return record.state
    fields: dict[str, Any] = {}
    if isinstance(status, Succeeded):
        res = status.result
        fields = {"result": unstructure(res), "cost": unstructure(res.cost) if res.cost is not None else None,
                  "error": None}
    elif isinstance(status, Failed):
        fields = {"error": status.error.message}
    elif not isinstance(status, (Running, Cancelled)):
        return record.state
    journal.transition(record.client_key, state, detail=DETAIL, **fields)
    return state
