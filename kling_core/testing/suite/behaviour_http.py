"""``HttpBehaviourTests``: the behaviour half for HTTP providers, driven by their cassettes.

Each job is a cassette replayed without comparing what was sent (the wire half does that):
the responses drive the plugin, and what it returns is judged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from kling_core.contract.status import Failed
from kling_core.errors import ProviderError
from kling_core.testing.cassettes import Cassette
from kling_core.testing.judge import JobRun, JobRuns, Resumed, ended, error_problems, replay_trail
from kling_core.testing.replay import ContractFailure, describe_exception, replay
from kling_core.testing.suite.base import CassetteSuite, raise_if
from kling_core.testing.suite.behaviour import BehaviourTests
from kling_core.testing.tables import as_response, describe_entry

# What each required outcome means, for the message when no cassette shows it.
OUTCOME_HINTS = {
    "failed": "a job the host reports failed (last step expects state 'failed')",
    "completed_with_error": 'a job the host reports done with an error (a cassette with "covers": '
    '["completed_with_error"], its last step expecting state \'failed\')',
    "cancel": "a cancel step (the provider claims can_cancel)",
    "SubmitUncertainError": "a submit whose answer is lost after sending, raising SubmitUncertainError",
}


def _ends_in_error(c: Cassette) -> bool:
    return c.steps[-1].expect_kind == "error"


def _has_cancel(c: Cassette) -> bool:
    return any(s.op == "cancel" for s in c.steps)


def outcomes_shown(cassettes: list[Cassette]) -> set[str]:
    """Every outcome the cassettes show: end states, error classes, declared ``covers``."""
    have = {c.outcome() for c in cassettes} | {word for c in cassettes for word in c.covers}
    if any(_has_cancel(c) for c in cassettes):
        have.add("cancel")
    # A submit whose answer is lost must be shown to raise, once, wherever in a scenario.
    have |= {
        str(s.expect["error"]["type"]) for c in cassettes for s in c.steps
        if s.op == "submit" and s.expect_kind == "error"
    }
    return have


class HttpBehaviourTests(BehaviourTests, CassetteSuite):
    """``test_behaviour_*`` for HTTP providers: jobs come from the cassettes."""

    # What the cassettes must show: end states, canonical error classes, and the cases in
    # cassette.COVERS. A submit raising SubmitUncertainError is always required, and "cancel"
    # when the provider claims can_cancel. A host with no such state drops it here, with a
    # comment saying so (e.g. a host that never reports "done" with an error):
    #     required_outcomes = ("succeeded", "failed", "AuthenticationError", "RateLimitedError")
    required_outcomes: ClassVar[tuple[str, ...]] = (
        "succeeded", "failed", "completed_with_error", "AuthenticationError", "RateLimitedError",
    )

    def kling_replayed(self, tmp_path: Path, keep: Callable[[Cassette], bool]) -> JobRuns:
        cls = self.kling_provider_cls()
        runs = []
        for c in self.kling_cassettes():
            if keep(c):
                outcome = replay(cls, c, work_dir=tmp_path, check_requests=False)
                runs.append(JobRun(c.path.name, replay_trail(outcome), tuple(outcome.failures)))
        return JobRuns(f"the cassettes in {self.kling_cassette_dir()}", runs)

    @pytest.fixture
    def kling_success_runs(self, tmp_path: Path) -> JobRuns:
        return self.kling_replayed(tmp_path, lambda c: c.outcome() == "succeeded")

    @pytest.fixture
    def kling_error_runs(self, tmp_path: Path) -> JobRuns:
        return self.kling_replayed(tmp_path, _ends_in_error)

    @pytest.fixture
    def kling_cancel_runs(self, tmp_path: Path) -> JobRuns:
        return self.kling_replayed(tmp_path, _has_cancel)

    @pytest.fixture
    def kling_failed_runs(self, tmp_path: Path) -> JobRuns:
        return self.kling_replayed(tmp_path, lambda c: c.outcome() == "failed")

    @pytest.fixture
    def kling_completed_with_error_runs(self, tmp_path: Path) -> JobRuns:
        return self.kling_replayed(tmp_path, lambda c: "completed_with_error" in c.covers)

    @pytest.fixture
    def kling_resumed(self, tmp_path: Path) -> Resumed:
        ids = [s.expect["handle"]["job_id"] for c in self.kling_cassettes() for s in c.steps
               if s.expect_kind == "handle" and "job_id" in s.expect["handle"]]
        job_id = ids[0] if ids else self.sample_job_id
        model = self.kling_provider_cls().capabilities.models[0].model
        return Resumed(job_id, self.kling_provider(tmp_path).resume(job_id, model=model))

    def _judge_failed(self, runs: JobRuns, outcome: str) -> None:
        if not runs.runs:
            if outcome in self.required():
                raise ContractFailure(f"{runs.source} show no {OUTCOME_HINTS[outcome]}")
            pytest.skip(f"no cassette shows {outcome!r} (not in required_outcomes)")
        problems = []
        for run in runs.runs:
            problems += run.problems(self.provider_name)
            final = run.final
            if not isinstance(final, Failed):
                problems.append(f"{run.label}: the job ended {ended(final)}, expected failed")
            elif not final.error.message:
                problems.append(f"{run.label}: failed without an error message")
        raise_if(problems, f"{outcome!r} scenarios do not end in a failed job")

    def test_behaviour_job_fails(self, kling_failed_runs: JobRuns) -> None:
        """A job the host fails is reported ``failed``: not running, not an exception."""
        self._judge_failed(kling_failed_runs, "failed")

    def test_behaviour_completed_with_error_fails(self, kling_completed_with_error_runs: JobRuns) -> None:
        """The host says done, but its answer carries an error: that is a failed job too."""
        self._judge_failed(kling_completed_with_error_runs, "completed_with_error")

    def test_behaviour_error_responses_map(self, tmp_path: Path) -> None:
        """Every recorded error response through ``map_error``: typed, status kept, no crash."""
        provider = self.kling_provider(tmp_path)
        map_error = getattr(provider, "map_error", None)
        if map_error is None:
            pytest.skip("the provider has no map_error")
        table = getattr(provider, "error_table", None)
        problems = []
        for c in self.kling_cassettes():
            for i, step in enumerate(c.steps, start=1):
                for k, it in enumerate(step.interactions, start=1):
                    resp = it.response
                    if resp.raise_ is not None or resp.status < 400:
                        continue
                    where = f"{c.path.name}: step {i} ({step.op}), interaction {k} (HTTP {resp.status})"
                    try:
                        err = map_error(as_response(resp, it.request.method, it.request.url))
                    except Exception as exc:
                        problems.append(f"{where}: map_error raised {describe_exception(exc)}")
                        continue
                    if not isinstance(err, ProviderError):
                        problems.append(f"{where}: map_error returned {err!r}, not a ProviderError")
                        continue
                    found = error_problems(err, self.provider_name)
                    if err.status_code != resp.status:
                        found.append(f"map_error kept status_code {err.status_code}")
                    if found and table is not None:
                        found.append(f"the plugin's table entry: {describe_entry(table, resp.status, err.code)}")
                    problems += [f"{where}: {p}" for p in found]
        raise_if(problems, "recorded error responses do not map through map_error")

    def required(self) -> set[str]:
        """The outcomes this provider's cassettes must show.

        "completed_with_error" is required only of a host that has that state: one whose spec
        declares paths that turn "completed" into a failure (``spec.status.completed_error``).
        """
        cls = self.kling_provider_cls()
        want = set(self.required_outcomes) | {"SubmitUncertainError"}
        if cls.capabilities.can_cancel:
            want.add("cancel")
        spec = getattr(cls, "spec", None)
        if spec is not None and not spec.status.completed_error:
            want.discard("completed_with_error")
        return want

    def test_behaviour_documented_outcomes_covered(self) -> None:
        want = self.required()
        missing = sorted(want - outcomes_shown(self.kling_cassettes()))
        raise_if(
            [f"{m}: {OUTCOME_HINTS.get(m, f'a scenario ending in {m}')}" for m in missing],
            f"the cassettes in {self.kling_cassette_dir()} do not show every required outcome",
        )
