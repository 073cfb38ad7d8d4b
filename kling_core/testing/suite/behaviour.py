"""``BehaviourTests``: what every provider must do, however its jobs are driven.

The tests here judge jobs; fixtures supply them, and a composition decides how (fsspec's
abstract-test pattern: the variation is in fixtures, never in ``if`` branches):

- ``kling_success_runs``, ``kling_error_runs``, ``kling_cancel_runs``: :class:`JobRuns`
- ``kling_resumed``: :class:`Resumed`

``HttpBehaviourTests`` replays cassettes to provide them; ``LocalBehaviourTests`` runs real
jobs on sample media.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kling_core.contract.models import MODELS, EditRequest
from kling_core.contract.status import Succeeded
from kling_core.errors import UnsupportedError, ValidationError
from kling_core.provider import JobHandle
from kling_core.testing.doubles import CallLog, build_provider, canary_credentials, refusing_transport
from kling_core.testing.judge import JobRuns, Resumed, ended
from kling_core.testing.replay import ContractFailure, describe_exception
from kling_core.testing.suite.base import SuiteBase, raise_if, submit_once


class BehaviourTests(SuiteBase):
    """``test_behaviour_*`` for every provider; needs the fixtures named in the module doc."""

    def test_behaviour_provider_declares_itself(self) -> None:
        cls = self.kling_provider_cls()
        problems = []
        if cls.name != self.provider_name:
            problems.append(f"provider class name is {cls.name!r}, the suite tests {self.provider_name!r}")
        caps = getattr(cls, "capabilities", None)
        if caps is None or not caps.models:
            problems.append("capabilities declare no model")
        else:
            for m in caps.models:
                if m.model not in MODELS:
                    problems.append(f"capabilities name model {m.model!r}, not one of {', '.join(MODELS)}")
                if not m.edit_modes or not m.qualities:
                    problems.append(f"{m.model}: no edit mode or quality declared")
        raise_if(problems, f"provider {self.provider_name!r} does not declare itself properly")

    def test_behaviour_job_succeeds(self, kling_success_runs: JobRuns) -> None:
        if not kling_success_runs.runs:
            raise ContractFailure(f"no job reaching 'succeeded' in {kling_success_runs.source}")
        problems = []
        for run in kling_success_runs.runs:
            problems += run.problems(self.provider_name)
            if not isinstance(run.final, Succeeded):
                problems.append(f"{run.label}: the job ended {ended(run.final)}, expected succeeded")
        raise_if(problems, "successful jobs do not behave")

    def test_behaviour_errors_map(self, kling_error_runs: JobRuns) -> None:
        problems = [p for run in kling_error_runs.runs for p in run.problems(self.provider_name)]
        raise_if(problems, "failures do not map to the right canonical errors")

    def test_behaviour_cancel(self, request: pytest.FixtureRequest) -> None:
        if not self.kling_provider_cls().capabilities.can_cancel:
            pytest.skip("provider lacks cancel")
        runs: JobRuns = request.getfixturevalue("kling_cancel_runs")
        if not runs.runs:
            raise ContractFailure(f"the provider claims can_cancel but {runs.source} show no cancel")
        problems = []
        for run in runs.runs:
            problems += run.problems(self.provider_name)
            problems += [
                f"{run.label}: step {i} (cancel): returned {value!r}, not a bool"
                for i, (op, value, error) in enumerate(run.trail, start=1)
                if op == "cancel" and error is None and not isinstance(value, bool)
            ]
        raise_if(problems, "cancelled jobs do not behave")

    def test_behaviour_cancel_refused_when_unsupported(self, tmp_path: Path) -> None:
        if self.kling_provider_cls().capabilities.can_cancel:
            pytest.skip("provider can cancel")
        log = CallLog()
        provider = self.kling_provider(tmp_path, log)

        async def go() -> Any:
            try:
                return await provider.cancel(provider.resume(self.sample_job_id))
            finally:
                await provider.aclose()

        with pytest.raises(UnsupportedError):
            asyncio.run(go())
        assert len(log) == 0, f"cancel sent {len(log)} HTTP request(s) although the provider cannot cancel"

    def test_behaviour_resume(self, kling_resumed: Resumed) -> None:
        """A job is found again from its bare id (``kling status PROVIDER JOB_ID``)."""
        got = kling_resumed
        assert isinstance(got.handle, JobHandle), f"resume returned {got.handle!r}, not a JobHandle"
        assert got.handle.job_id == got.job_id and got.handle.provider == self.provider_name, got.handle
        if got.expected_state is not None:
            state = getattr(got.status, "state", got.status)
            assert state == got.expected_state, f"resumed job reads {state}, the job ended {got.expected_state}"

    def test_behaviour_capability_limits_refused(self, tmp_path: Path) -> None:
        # Imported here: hypothesis must load after pytest (assertion rewriting), not with the suite.
        from kling_core.testing.strategies import _mutations

        caps = self.kling_provider_cls().capabilities
        problems = []
        checked = 0
        for model in caps.models:
            kw: dict[str, Any] = dict(
                prompt="Make the sky a sunset", video="https://media.example.com/video/a.mp4", model=model.model,
                quality=model.qualities[0], edit_mode=model.edit_modes[0],
            )
            base = EditRequest(**kw)
            for field_name, mutate in _mutations(caps):
                bad = mutate(base, model)
                if bad == base:
                    continue
                checked += 1
                log = CallLog()
                where = f"{model.model}: unsupported {field_name}"
                try:
                    asyncio.run(submit_once(self.kling_provider(tmp_path, log), bad))
                    problems.append(f"{where}: the request was not refused")
                except ValidationError as exc:
                    if not any(p.path.split(".")[0].split("[")[0] == field_name for p in exc.problems):
                        problems.append(f"{where}: refused, but the error names only: {exc}")
                except Exception as exc:
                    problems.append(f"{where}: raised {describe_exception(exc)}, expected ValidationError/UnsupportedError")
                if len(log):
                    problems.append(f"{where}: {len(log)} HTTP request(s) were sent before refusing")
        if not checked:
            pytest.skip("the capabilities leave nothing to push out of bounds")
        raise_if(problems, "requests outside the capabilities were not refused before any request")

    def test_behaviour_repr_hides_credentials(self, tmp_path: Path) -> None:
        cls = self.kling_provider_cls()
        env = canary_credentials(cls)
        provider = build_provider(cls, environ=env, transport=refusing_transport(CallLog()), work_dir=tmp_path)
        shown = f"{provider!r} {provider!s} {getattr(provider, '__dict__', {})!r}"
        leaked = [k for k, v in env.items() if v in shown]
        assert not leaked, f"the value of {', '.join(leaked)} appears in the provider's repr/str/attributes"
