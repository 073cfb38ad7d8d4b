"""``LocalBehaviourTests``: the behaviour half for providers without HTTP (the mock, say).

There is no wire format to replay, so the jobs are real: submitted through the client's own
checks on small sample media and polled to the end, failures scripted through request
``options`` (:class:`ErrorCase`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from kling_core import errors
from kling_core.contract.models import EditRequest
from kling_core.contract.status import Cancelled, Failed, is_terminal
from kling_core.preflight import check_request
from kling_core.provider import Provider
from kling_core.testing.judge import KIND_ERRORS, JobRun, JobRuns, Resumed, Trail, ended
from kling_core.testing.media import SampleMedia
from kling_core.testing.replay import ContractFailure, describe_exception
from kling_core.testing.suite.behaviour import BehaviourTests


@attrs.frozen
class ErrorCase:
    """A documented failure of a non-HTTP provider, scripted through request ``options``."""

    name: str
    options: Mapping[str, str | int | float | bool]
    error: str  # canonical class name in kling_core.errors (or the class a Failed kind maps to)
    retryable: bool | None = None


async def run_job(
    provider: Provider, request: EditRequest, *, max_wait: float, poll_every: float, cancel: bool = False
) -> Trail:
    """Submit through the client's checks and poll to the end; every step, an error ends it.

    Polls really wait (``poll_every``) so a provider working in the background gets the time.
    """
    trail: list[tuple[str, Any, BaseException | None]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    op = "submit"
    try:
        check_request(provider, request)
        handle = await provider.submit(await provider.prepare(request))
        trail.append((op, handle, None))
        if cancel:
            op = "cancel"
            trail.append((op, await provider.cancel(handle), None))
        op = "status"
        while True:
            status = await provider.status(handle)
            trail.append((op, status, None))
            if is_terminal(status):
                return trail
            if loop.time() > deadline:
                raise ContractFailure(f"the job did not reach a terminal state within {errors.seconds_text(max_wait)}: last {status!r}")
            await asyncio.sleep(poll_every)
    except ContractFailure:
        raise
    except Exception as exc:  # judged with the trail: canonical or not, expected or not
        trail.append((op, None, exc))
        return trail
    finally:
        await provider.aclose()


def case_failures(case: ErrorCase, run: JobRun) -> list[str]:
    """How a scripted failure's run differs from the documented error."""
    final = run.final
    if isinstance(final, BaseException):
        want = getattr(errors, case.error, None)
        out = []
        if not (isinstance(want, type) and isinstance(final, want)):
            out.append(f"expected {case.error}, got {describe_exception(final)}")
        if case.retryable is not None and getattr(final, "retryable", None) is not case.retryable:
            out.append(f"{type(final).__name__}.retryable is {getattr(final, 'retryable', None)}, expected {case.retryable}")
        return out
    if not isinstance(final, Failed):
        return [f"expected {case.error}, but the job ended {ended(final)}"]
    got = KIND_ERRORS.get(final.error.kind, "?")
    out = []
    if got != case.error:
        out.append(f"expected {case.error}, the job failed with kind {final.error.kind!r} ({got})")
    if case.retryable is not None and final.error.retryable is not case.retryable:
        out.append(f"failure retryable is {final.error.retryable}, expected {case.retryable}")
    return out


class LocalBehaviourTests(BehaviourTests):
    """``test_behaviour_*`` for providers without HTTP: real jobs on sample media."""

    # Documented failures, scripted through request options.
    error_cases: ClassVar[tuple[ErrorCase, ...]] = ()
    # Options for the behavioural jobs (e.g. to keep renders fast).
    job_options: ClassVar[Mapping[str, str | int | float | bool]] = {}
    # How long a behavioural job may take, and the polling step.
    max_job_seconds: ClassVar[float] = 120.0
    poll_every: ClassVar[float] = 0.05

    @pytest.fixture
    def sample_media(self, kling_sample_media: SampleMedia) -> SampleMedia:
        """Override to supply your own clip and reference image."""
        return kling_sample_media

    def kling_job_request(self, media: SampleMedia, **options: Any) -> EditRequest:
        model = self.kling_provider_cls().capabilities.models[0]
        images = (str(media.image),) if model.max_images and model.max_references else ()
        prompt = "Turn the scene into a watercolor painting" + (" in the colours of @Image1" if images else "")
        kw: dict[str, Any] = dict(
            prompt=prompt, video=str(media.video), model=model.model, images=images,
            quality=model.qualities[0], edit_mode="edit" if "edit" in model.edit_modes else model.edit_modes[0],
            options={**self.job_options, **options},
        )
        return EditRequest(**kw)

    def kling_run(self, tmp_path: Path, request: EditRequest, *, cancel: bool = False) -> Trail:
        job = run_job(self.kling_provider(tmp_path), request, max_wait=self.max_job_seconds,
                      poll_every=self.poll_every, cancel=cancel)
        return asyncio.run(job)

    @pytest.fixture
    def kling_success_runs(self, tmp_path: Path, sample_media: SampleMedia) -> JobRuns:
        trail = self.kling_run(tmp_path, self.kling_job_request(sample_media))
        return JobRuns("a job on the sample media", [JobRun("sample job", trail)])

    @pytest.fixture
    def kling_error_runs(self, tmp_path: Path, sample_media: SampleMedia) -> JobRuns:
        if not self.error_cases:
            pytest.skip(f"no documented error cases declared for {self.provider_name!r} (set error_cases)")
        runs = []
        for case in self.error_cases:
            run = JobRun(f"error case {case.name!r}", self.kling_run(tmp_path, self.kling_job_request(sample_media, **case.options)))
            runs.append(attrs.evolve(run, failures=tuple(case_failures(case, run))))
        return JobRuns("the declared error_cases", runs)

    @pytest.fixture
    def kling_cancel_runs(self, tmp_path: Path, sample_media: SampleMedia) -> JobRuns:
        trail = self.kling_run(tmp_path, self.kling_job_request(sample_media), cancel=True)
        run = JobRun("cancelled sample job", trail)
        cancel = next(((value, error) for op, value, error in trail if op == "cancel"), None)
        failures = []
        if cancel is None or cancel[0] is not True:
            got = "no cancel (the submit failed)" if cancel is None else (
                ended(cancel[1]) if cancel[1] is not None else repr(cancel[0]))
            failures.append(f"cancel of a fresh job: got {got}, expected True")
        elif not isinstance(run.final, Cancelled):
            failures.append(f"after an accepted cancel the job ended {ended(run.final)}, expected cancelled")
        return JobRuns("a job on the sample media", [attrs.evolve(run, failures=tuple(failures))])

    @pytest.fixture
    def kling_resumed(self, tmp_path: Path, sample_media: SampleMedia) -> Resumed:
        run = JobRun("sample job", self.kling_run(tmp_path, self.kling_job_request(sample_media)))
        _, first, error = run.trail[0]
        if error is not None:
            raise ContractFailure(f"the sample job could not be submitted: {describe_exception(error)}")
        later = self.kling_provider(tmp_path)  # a fresh instance, as a later process would build

        async def go() -> Any:
            try:
                handle = later.resume(first.job_id, model=first.model)
                return handle, await later.status(handle)
            finally:
                await later.aclose()

        handle, status = asyncio.run(go())
        return Resumed(first.job_id, handle, status, ended(run.final))
