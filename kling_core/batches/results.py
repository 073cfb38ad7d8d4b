"""What a batch gives back per line, and the results JSONL file.

The JSONL file is written line by line as jobs finish, each line flushed to the operating
system at once (a killed batch loses none of what it reported; the job log holds every job
anyway) and fsynced when the batch ends. Each run rewrites it whole: lines skipped because an
earlier run saved them are reported again, with ``"action": "skipped"``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import IO, Any, Literal

import attrs

from kling_core.batches.plan import PlannedLine
from kling_core.client.submit import Started

LineState = Literal["saved", "failed", "cancelled", "not_run"]
LineAction = Literal["submitted", "picked_up", "skipped", "not_started"]


@attrs.frozen
class BatchLineResult:
    """One manifest line's outcome, yielded by ``batch``/``abatch`` as it finishes.

    ``state``: ``saved`` (the output is written), ``failed``, ``cancelled``, or ``not_run`` (the
    batch stopped first: ``--fail-fast``, Ctrl-C). ``action``: what this run did — ``submitted``,
    ``picked_up`` (its job from an earlier run, not submitted again), ``skipped`` (finished in an
    earlier run) or ``not_started``.
    """

    line: int
    client_key: str
    state: LineState
    action: LineAction
    provider: str
    output: str
    job_id: str | None = None
    error: str | None = None
    error_type: str | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.state == "saved"

    def to_document(self) -> dict[str, Any]:
        return attrs.asdict(self)


def skipped(line: PlannedLine) -> BatchLineResult:
    """A line an earlier run finished: saved, or failed/cancelled on the host."""
    state: LineState = line.prior_state if line.prior_state in ("saved", "failed", "cancelled") else "failed"  # type: ignore[assignment]
    return BatchLineResult(line=line.number, client_key=line.client_key, state=state, action="skipped",
                           provider=line.provider, output=str(line.output), job_id=line.prior_job_id,
                           error=line.prior_error if state != "saved" else None)


def not_run(line: PlannedLine, why: str, started: Started | None = None) -> BatchLineResult:
    """A line the batch stopped before it finished; ``started``: the job it already had (the
    line was submitted or picked up, and its job stays in the job log for the next run)."""
    if started is None:
        return BatchLineResult(line=line.number, client_key=line.client_key, state="not_run", action="not_started",
                               provider=line.provider, output=str(line.output), error=why)
    return BatchLineResult(line=line.number, client_key=line.client_key, state="not_run",
                           action="picked_up" if started.resumed else "submitted", provider=started.handle.provider,
                           output=str(line.output), job_id=started.handle.job_id,
                           error=f"{why} (its job was not waited for; it stays in the job log)")


class ResultsFile:
    """The results JSONL: one object per line as it finishes (see the module's note)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written in place, not renamed at the end: a killed batch leaves what it reported.
        self._fh: IO[str] | None = path.open("w", encoding="utf-8")

    def write(self, result: BatchLineResult) -> None:
        if self._fh is None:
            return
        self._fh.write(json.dumps(result.to_document(), sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None


@attrs.define
class Tally:
    """Counts for the summary, kept as results arrive (memory stays flat for any batch size)."""

    by_state: Counter[str] = attrs.field(factory=Counter)
    by_action: Counter[str] = attrs.field(factory=Counter)
    problems: list[BatchLineResult] = attrs.field(factory=list)

    def add(self, result: BatchLineResult) -> None:
        self.by_state[result.state] += 1
        self.by_action[result.action] += 1
        if not result.ok:
            self.problems.append(result)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())
