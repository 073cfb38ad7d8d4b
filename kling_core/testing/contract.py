"""``ProviderContractTests``: the suite every provider plugin runs, first-party or not.

A plugin's test module subclasses it and names its provider::

    class TestMine(ProviderContractTests):
        provider_name = "mine"
        cassette_dir = Path(kling_mine.__file__).parent / "cassettes"

Three halves, told apart by test-name prefix so ``kling contract`` can summarise them:

- ``test_behaviour_*`` (every provider): a job goes submit → statuses → succeeded; errors map
  to the right canonical class with ``retryable`` set right; requests outside the capability
  data are refused before any HTTP call; cancel where claimed, refused where not. HTTP
  providers are driven by their cassettes' responses, others by running real jobs on sample
  media.
- ``test_wire_*`` (HTTP providers): every cassette replayed strictly: the requests the plugin
  sends must match the recorded ones, and the recorded responses must parse to ``expect``.
- ``test_property_*`` (HTTP providers): hypothesis-generated requests and responses against the
  builders, the parsers and the host's documented JSON Schemas.

Capabilities are class data on the provider, read here to skip what it does not claim.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import httpx
import pytest

from kling_core import errors
from kling_core.contract.models import MODELS, EditRequest
from kling_core.contract.status import Cancelled, Failed, Succeeded, is_terminal
from kling_core.errors import KlingError, ProviderError, UnsupportedError, ValidationError
from kling_core.provider import JobHandle, Provider
from kling_core.testing.cassettes import Cassette, cassette_files, load_cassette
from kling_core.testing.judge import (
    KIND_ERRORS,
    error_problems,
    lifecycle_problems,
    replay_trail,
    trail_problems,
)
from kling_core.testing.media import SampleMedia
from kling_core.testing.parsers import NOT_JSON_BODIES, RawBody, feed_parser
from kling_core.testing.replay import (
    CallLog,
    ContractFailure,
    build_provider,
    canary_credentials,
    describe_exception,
    preflight,
    refusing_transport,
    replay,
)
from kling_core.testing.secrets import assert_no_secrets


@attrs.frozen
class ErrorCase:
    """A documented failure of a non-HTTP provider, scripted through request ``options``."""

    name: str
    options: Mapping[str, str | int | float | bool]
    error: str  # canonical class name in kling_core.errors (or the class a Failed kind maps to)
    retryable: bool | None = None


def default_cassette_dir(provider_cls: type[Provider]) -> Path:
    """``Provider.cassette_dir`` if set, else ``<top-level package>/cassettes``."""
    explicit = getattr(provider_cls, "cassette_dir", None)
    if explicit:
        return Path(explicit)
    package = importlib.import_module(provider_cls.__module__.split(".")[0])
    return Path(package.__file__ or ".").parent / "cassettes"


@functools.cache
def _installed_provider(name: str) -> type[Provider]:
    from kling_core.plugins import PluginHost

    return PluginHost().provider_class(name)


def resolve_installed(name: str) -> type[Provider]:
    """The installed provider class registered under ``name`` (ConfigError if none)."""
    return _installed_provider(name)


def _scenario_id(path: Path) -> str:
    try:
        return str(json.loads(path.read_text("utf-8"))["scenario"])
    except Exception:
        return path.stem


def _raise_if(problems: list[str], title: str) -> None:
    if problems:
        raise ContractFailure(title + ":\n" + "\n".join(f"  - {p}" for p in problems))


async def _run_job(
    provider: Provider, request: EditRequest, *, max_wait: float, poll_every: float, cancel: bool = False
) -> list[Any]:
    """Submit through the core's checks and poll to the end; the trail of values seen.

    Polls really wait (``poll_every``) so a provider working in the background gets the time.
    """
    preflight(provider, request)
    handle = await provider.submit(await provider.prepare(request))
    trail: list[Any] = [handle]
    if cancel:
        trail.append(await provider.cancel(handle))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    while True:
        status = await provider.status(handle)
        trail.append(status)
        if is_terminal(status):
            return trail
        if loop.time() > deadline:
            raise ContractFailure(f"the job did not reach a terminal state within {max_wait:.0f}s: last {status!r}")
        await asyncio.sleep(poll_every)


class ProviderContractTests:
    """Subclass in a test module; set ``provider_name`` (and ``cassette_dir`` for HTTP providers)."""

    provider_name: ClassVar[str]
    cassette_dir: ClassVar[str | Path | None] = None
    # Set to test a class directly instead of the installed plugin of that name.
    provider_cls: ClassVar[type[Provider] | None] = None
    # Outcomes an HTTP provider's cassettes must show (scenario end state or error class).
    required_outcomes: ClassVar[tuple[str, ...]] = ("succeeded", "AuthenticationError", "RateLimitedError")
    # Non-HTTP providers: documented failures, scripted through request options.
    error_cases: ClassVar[tuple[ErrorCase, ...]] = ()
    # Non-HTTP providers: options for the behavioural jobs (e.g. to keep renders fast).
    job_options: ClassVar[Mapping[str, str | int | float | bool]] = {}
    # Non-HTTP providers: how long a behavioural job may take, and the polling step.
    max_job_seconds: ClassVar[float] = 120.0
    poll_every: ClassVar[float] = 0.05
    property_examples: ClassVar[int] = 40
    # True: the same examples every run (hypothesis derandomize), e.g. for suites testing suites.
    property_derandomize: ClassVar[bool] = False
    # A well-formed job id for this host, for checks that need one without a job.
    sample_job_id: ClassVar[str] = "job-0001"

    # -- plumbing ------------------------------------------------------------------------
    @classmethod
    def kling_provider_cls(cls) -> type[Provider]:
        if cls.provider_cls is not None:
            return cls.provider_cls
        return _installed_provider(cls.provider_name)

    @classmethod
    def kling_cassette_dir(cls) -> Path:
        if cls.cassette_dir is not None:
            return Path(cls.cassette_dir)
        return default_cassette_dir(cls.kling_provider_cls())

    @classmethod
    def kling_cassettes(cls) -> list[Cassette]:
        return [load_cassette(p) for p in cassette_files(cls.kling_cassette_dir())]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "kling_cassette_path" in metafunc.fixturenames:
            try:
                files = cassette_files(self.kling_cassette_dir())
            except Exception:
                files = []  # reported by test_wire_has_cassettes
            if files:
                metafunc.parametrize("kling_cassette_path", files, ids=[_scenario_id(p) for p in files])
            else:
                try:
                    http = self.kling_provider_cls().is_http
                except Exception:
                    http = True  # the other tests report why the provider cannot be loaded
                why = "no cassettes to replay" if http else "not an HTTP provider: no wire format"
                metafunc.parametrize(
                    "kling_cassette_path", [pytest.param(None, marks=pytest.mark.skip(reason=why))], ids=["none"]
                )

    def _http_only(self) -> type[Provider]:
        cls = self.kling_provider_cls()
        if not cls.is_http:
            pytest.skip(f"provider {cls.name!r} is not an HTTP provider: no wire format")
        return cls

    def _provider(self, tmp_path: Path, log: CallLog | None = None, **options: Any) -> Provider:
        cls = self.kling_provider_cls()
        return build_provider(
            cls,
            environ=canary_credentials(cls),
            transport=refusing_transport(log if log is not None else CallLog()),
            options=options or None,
            sleep=_no_sleep,
            work_dir=tmp_path,
        )

    def _select(self, want: str) -> list[Cassette]:
        return [c for c in self.kling_cassettes() if c.outcome() == want or (want == "error" and c.steps[-1].expect_kind == "error")]

    @pytest.fixture
    def sample_media(self, kling_sample_media: SampleMedia) -> SampleMedia:
        """Override to supply your own clip and reference image."""
        return kling_sample_media

    def _job_request(self, media: SampleMedia, **options: Any) -> EditRequest:
        cls = self.kling_provider_cls()
        model = cls.capabilities.models[0]
        images = (str(media.image),) if model.max_images and model.max_references else ()
        prompt = "Turn the scene into a watercolor painting" + (" in the colours of @Image1" if images else "")
        kw: dict[str, Any] = dict(
            prompt=prompt, video=str(media.video), model=model.model, images=images,
            quality=model.qualities[0], edit_mode="edit" if "edit" in model.edit_modes else model.edit_modes[0],
            options={**self.job_options, **options},
        )
        return EditRequest(**kw)

    # -- behavioural half ----------------------------------------------------------------
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
        _raise_if(problems, f"provider {self.provider_name!r} does not declare itself properly")

    def test_behaviour_job_succeeds(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        cls = self.kling_provider_cls()
        if cls.is_http:
            cassettes = self._select("succeeded")
            if not cassettes:
                raise ContractFailure(f"no cassette in {self.kling_cassette_dir()} shows a job reaching 'succeeded'")
            problems = []
            for c in cassettes:
                outcome = replay(cls, c, work_dir=tmp_path, check_requests=False)
                problems += [f"{c.scenario}: {p}" for p in outcome.failures + lifecycle_problems(replay_trail(outcome), cls.name)]
            _raise_if(problems, "successful scenarios do not behave")
            return
        media: SampleMedia = request.getfixturevalue("sample_media")
        provider = self._provider(tmp_path)
        trail = asyncio.run(self._run_and_close(provider, self._job_request(media)))
        _raise_if(trail_problems(trail, cls.name), "the job did not behave")
        final = trail[-1]
        if not isinstance(final, Succeeded):
            raise ContractFailure(f"the job ended {final!r}, expected succeeded")

    async def _run_and_close(self, provider: Provider, req: EditRequest, *, cancel: bool = False) -> list[Any]:
        try:
            return await _run_job(provider, req, max_wait=self.max_job_seconds, poll_every=self.poll_every, cancel=cancel)
        finally:
            await provider.aclose()

    def test_behaviour_errors_map(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        cls = self.kling_provider_cls()
        if cls.is_http:
            cassettes = self._select("error")
            problems = []
            for c in cassettes:
                outcome = replay(cls, c, work_dir=tmp_path, check_requests=False)
                problems += [f"{c.scenario}: {p}" for p in outcome.failures + lifecycle_problems(replay_trail(outcome), cls.name)]
            problems += self._maperror_problems(tmp_path)
            _raise_if(problems, "error scenarios do not map to the right canonical errors")
            return
        if not self.error_cases:
            pytest.skip(f"no documented error cases declared for {cls.name!r} (set error_cases)")
        media: SampleMedia = request.getfixturevalue("sample_media")
        problems = []
        for case in self.error_cases:
            problems += [f"{case.name}: {p}" for p in self._error_case_problems(case, media, tmp_path)]
        _raise_if(problems, "scripted failures do not map to the right canonical errors")

    def _maperror_problems(self, tmp_path: Path) -> list[str]:
        """Every recorded error response through ``map_error``: typed, status kept, no crash."""
        cls = self.kling_provider_cls()
        provider = self._provider(tmp_path)
        map_error = getattr(provider, "map_error", None)
        if map_error is None:
            return []
        out = []
        for c in self.kling_cassettes():
            for it in c.interactions:
                resp = it.response
                if resp.raise_ is not None or resp.status < 400:
                    continue
                request = httpx.Request(it.request.method, it.request.url)
                response = (
                    httpx.Response(resp.status, headers=dict(resp.headers), json=resp.json, request=request)
                    if resp.has_json
                    else httpx.Response(resp.status, headers=dict(resp.headers), text=resp.text or "", request=request)
                )
                try:
                    err = map_error(response)
                except Exception as exc:
                    out.append(f"{c.scenario}: map_error raised {describe_exception(exc)} for HTTP {resp.status}")
                    continue
                if not isinstance(err, ProviderError):
                    out.append(f"{c.scenario}: map_error returned {err!r}, not a ProviderError")
                    continue
                if err.status_code != resp.status:
                    out.append(f"{c.scenario}: map_error kept status_code {err.status_code}, the response was {resp.status}")
                out += [f"{c.scenario}: {p}" for p in error_problems(err, cls.name)]
        return out

    def _error_case_problems(self, case: ErrorCase, media: SampleMedia, tmp_path: Path) -> list[str]:
        provider = self._provider(tmp_path)
        try:
            trail = asyncio.run(self._run_and_close(provider, self._job_request(media, **case.options)))
        except KlingError as exc:
            want = getattr(errors, case.error, None)
            out = []
            if want is None or not isinstance(exc, want):
                out.append(f"expected {case.error}, got {describe_exception(exc)}")
            if case.retryable is not None and getattr(exc, "retryable", None) is not case.retryable:
                out.append(f"{type(exc).__name__}.retryable is {getattr(exc, 'retryable', None)}, expected {case.retryable}")
            return out + error_problems(exc, self.provider_name)
        except Exception as exc:
            return [f"raised a non-canonical {describe_exception(exc)}"]
        final = trail[-1]
        if not isinstance(final, Failed):
            return [f"expected {case.error}, but the job ended {final.state}"]
        got = KIND_ERRORS.get(final.error.kind, "?")
        out = []
        if got != case.error:
            out.append(f"expected {case.error}, the job failed with kind {final.error.kind!r} ({got})")
        if case.retryable is not None and final.error.retryable is not case.retryable:
            out.append(f"failure retryable is {final.error.retryable}, expected {case.retryable}")
        return out

    def test_behaviour_documented_outcomes_covered(self) -> None:
        cls = self._http_only()
        cassettes = self.kling_cassettes()
        have = {c.outcome() for c in cassettes}
        if any(s.op == "cancel" for c in cassettes for s in c.steps):
            have.add("cancel")
        # A submit whose answer is lost must be shown to raise, once, wherever in a scenario.
        have |= {
            str(s.expect["error"]["type"]) for c in cassettes for s in c.steps
            if s.op == "submit" and s.expect_kind == "error"
        }
        want = set(self.required_outcomes) | {"SubmitUncertainError"}
        if cls.capabilities.can_cancel:
            want.add("cancel")
        missing = sorted(want - have)
        if missing:
            raise ContractFailure(
                f"the cassettes in {self.kling_cassette_dir()} show no scenario ending in (or, for "
                f"SubmitUncertainError, a submit raising): {', '.join(missing)}"
            )

    def test_behaviour_capability_limits_refused(self, tmp_path: Path) -> None:
        from kling_core.testing.strategies import _mutations

        cls = self.kling_provider_cls()
        caps = cls.capabilities
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
                provider = self._provider(tmp_path, log)
                try:
                    asyncio.run(self._run_and_close(provider, bad))
                    problems.append(f"{model.model}: a request with an unsupported {field_name} was not refused")
                except ValidationError as exc:
                    if not any(p.path.split(".")[0].split("[")[0] == field_name for p in exc.problems):
                        problems.append(f"{model.model}: refusing {field_name}, the error names only: {exc}")
                except Exception as exc:
                    problems.append(f"{model.model}: unsupported {field_name}: raised {describe_exception(exc)}, expected ValidationError/UnsupportedError")
                if len(log):
                    problems.append(f"{model.model}: unsupported {field_name}: {len(log)} HTTP request(s) were sent before refusing")
        if not checked:
            pytest.skip("the capabilities leave nothing to push out of bounds")
        _raise_if(problems, "requests outside the capabilities were not refused before any request")

    def test_behaviour_cancel(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        cls = self.kling_provider_cls()
        if not cls.capabilities.can_cancel:
            pytest.skip("provider lacks cancel")
        if cls.is_http:
            cassettes = [c for c in self.kling_cassettes() if any(s.op == "cancel" for s in c.steps)]
            if not cassettes:
                raise ContractFailure("the provider claims can_cancel but no cassette has a cancel step")
            problems = []
            for c in cassettes:
                outcome = replay(cls, c, work_dir=tmp_path, check_requests=False)
                problems += [f"{c.scenario}: {p}" for p in outcome.failures + lifecycle_problems(replay_trail(outcome), cls.name)]
                for so in outcome.outcomes:
                    if so.step.op == "cancel" and so.error is None and not isinstance(so.value, bool):
                        problems.append(f"{c.scenario}: cancel returned {so.value!r}, not a bool")
            _raise_if(problems, "cancel scenarios do not behave")
            return
        media: SampleMedia = request.getfixturevalue("sample_media")
        provider = self._provider(tmp_path)
        trail = asyncio.run(self._run_and_close(provider, self._job_request(media), cancel=True))
        if trail[1] is not True:
            raise ContractFailure(f"cancel of a fresh job returned {trail[1]!r}, expected True")
        if not isinstance(trail[-1], Cancelled):
            raise ContractFailure(f"after an accepted cancel the job ended {trail[-1].state}, expected cancelled")

    def test_behaviour_cancel_refused_when_unsupported(self, tmp_path: Path) -> None:
        cls = self.kling_provider_cls()
        if cls.capabilities.can_cancel:
            pytest.skip("provider can cancel")
        log = CallLog()
        provider = self._provider(tmp_path, log)

        async def go() -> Any:
            try:
                return await provider.cancel(provider.resume(self.sample_job_id))
            finally:
                await provider.aclose()

        with pytest.raises(UnsupportedError):
            asyncio.run(go())
        assert len(log) == 0, f"cancel sent {len(log)} HTTP request(s) although the provider cannot cancel"

    def test_behaviour_resume(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        """A job is found again from its bare id (``kling status PROVIDER JOB_ID``)."""
        cls = self.kling_provider_cls()
        if cls.is_http:
            ids = [s.expect["handle"]["job_id"] for c in self.kling_cassettes() for s in c.steps
                   if s.expect_kind == "handle" and "job_id" in s.expect["handle"]]
            job_id = ids[0] if ids else self.sample_job_id
            handle = self._provider(tmp_path).resume(job_id, model=cls.capabilities.models[0].model)
            assert isinstance(handle, JobHandle), f"resume returned {handle!r}, not a JobHandle"
            assert handle.job_id == job_id and handle.provider == self.provider_name, handle
            return
        media: SampleMedia = request.getfixturevalue("sample_media")
        trail = asyncio.run(self._run_and_close(self._provider(tmp_path), self._job_request(media)))
        first: JobHandle = trail[0]
        later = self._provider(tmp_path)  # a fresh instance, as a later process would build

        async def go() -> Any:
            try:
                handle = later.resume(first.job_id, model=first.model)
                return handle, await later.status(handle)
            finally:
                await later.aclose()

        handle, status = asyncio.run(go())
        assert handle.job_id == first.job_id and handle.provider == self.provider_name, handle
        assert status.state == trail[-1].state, f"resumed job reads {status.state}, the job ended {trail[-1].state}"

    def test_behaviour_repr_hides_credentials(self, tmp_path: Path) -> None:
        cls = self.kling_provider_cls()
        env = canary_credentials(cls)
        provider = build_provider(cls, environ=env, transport=refusing_transport(CallLog()), work_dir=tmp_path)
        shown = f"{provider!r} {provider!s} {getattr(provider, '__dict__', {})!r}"
        leaked = [k for k, v in env.items() if v in shown]
        assert not leaked, f"the value of {', '.join(leaked)} appears in the provider's repr/str/attributes"

    # -- wire half -----------------------------------------------------------------------
    def test_wire_has_cassettes(self) -> None:
        self._http_only()
        d = self.kling_cassette_dir()
        if not cassette_files(d):
            raise ContractFailure(f"no cassettes found in {d} (one JSON file per scenario)")

    def test_wire_cassette_replays(self, kling_cassette_path: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        cls = self._http_only()
        cassette = load_cassette(kling_cassette_path)
        if request.config.getoption("kling_record", False):
            self._record(cls, cassette)
            cassette = load_cassette(kling_cassette_path)
        replay(cls, cassette, work_dir=tmp_path).check()

    def _record(self, cls: type[Provider], cassette: Cassette) -> None:
        from kling_core.testing.record import record_scenario, write_cassette

        if cassette.outcome() not in ("succeeded", "cancel", "cancelled"):
            pytest.skip(f"scenario {cassette.scenario!r} ends in {cassette.outcome()}: not reproducible live; kept as is")
        if cassette.steps[0].op != "submit":
            pytest.skip(f"scenario {cassette.scenario!r} starts from {cassette.steps[0].op}, not a submit: kept as is")
        env = {spec.env: os.environ.get(spec.env, "") for spec in cls.credentials}
        missing = [k for k, v in env.items() if not v.strip()]
        if missing:
            pytest.skip(f"recording needs {', '.join(missing)} set to a real key")
        doc = asyncio.run(
            record_scenario(
                cls, scenario=cassette.scenario, request=cassette.request, environ=env,
                description=cassette.description, options=cassette.options, base_url=cassette.base_url,
                cancel=any(s.op == "cancel" for s in cassette.steps),
            )
        )
        write_cassette(doc, cassette.path, secrets=list(env.values()))

    def test_wire_cassettes_hold_no_secrets(self) -> None:
        self._http_only()
        files = cassette_files(self.kling_cassette_dir())
        if not files:
            pytest.skip("no cassettes")
        assert_no_secrets(files)

    # -- property half -------------------------------------------------------------------
    def _settings(self) -> Callable[[Callable[..., None]], Callable[..., None]]:
        from hypothesis import HealthCheck, settings

        extra: dict[str, Any] = {}
        if self.property_derandomize:
            # Otherwise inherit the active profile: hypothesis' own "ci" profile (picked when CI
            # is set) already derandomizes.
            extra["derandomize"] = True
        return settings(
            max_examples=self.property_examples, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
            **extra,
        )

    def test_property_submit_body_matches_host_schema(self, tmp_path: Path) -> None:
        import jsonschema
        from hypothesis import assume, given

        from kling_core.testing.schemas import provider_schema
        from kling_core.testing.strategies import servable_requests

        cls = self._http_only()
        env = canary_credentials(cls)
        provider = build_provider(cls, environ=env, transport=refusing_transport(CallLog()), work_dir=tmp_path)
        build_submit = getattr(provider, "build_submit", None)
        request_schema = getattr(provider, "request_schema", None)
        if build_submit is None or request_schema is None:
            pytest.skip("provider has no build_submit/request_schema")
        seen_schema: list[str] = []

        @self._settings()
        @given(req=servable_requests(cls.capabilities))
        def check(req: EditRequest) -> None:
            assume(not provider.check(req))
            name = request_schema(req)
            built = build_submit(req)
            assert isinstance(built, httpx.Request), f"build_submit returned {built!r}, not an httpx.Request"
            for v in env.values():
                assert v not in str(built.url), "the credential appears in the submit URL"
                assert v.encode() not in built.content, "the credential appears in the submit body"
            if name is None:
                return
            seen_schema.append(name)
            body = json.loads(built.content)
            problems = sorted(jsonschema.Draft202012Validator(provider_schema(name, cls)).iter_errors(body), key=str)
            if problems:
                detail = "\n".join(f"  - {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in problems)
                raise ContractFailure(f"the submit body breaks {name} for request {req!r}:\n{detail}")

        check()
        if not seen_schema:
            pytest.skip("the provider names no documented request schema (request_schema returns None)")

    def test_property_unservable_requests_refused(self, tmp_path: Path) -> None:
        from hypothesis import given

        from kling_core.testing.strategies import unservable_requests

        cls = self.kling_provider_cls()

        @self._settings()
        @given(case=unservable_requests(cls.capabilities))
        def check(case: tuple[str, EditRequest]) -> None:
            field_name, req = case
            log = CallLog()
            provider = self._provider(tmp_path, log)
            try:
                asyncio.run(self._run_and_close(provider, req))
            except ValidationError:
                pass
            else:
                raise ContractFailure(f"a request with an unsupported {field_name} was accepted: {req!r}")
            assert len(log) == 0, f"{len(log)} HTTP request(s) sent before refusing an unsupported {field_name}"

        check()

    def test_property_parsers_take_documented_responses(self, tmp_path: Path) -> None:
        from hypothesis import given
        from hypothesis import strategies as st

        from kling_core.testing.schema_strategy import from_schema
        from kling_core.testing.schemas import provider_schema

        cls = self._http_only()
        schemas: Mapping[str, str] = getattr(cls, "response_schemas", {}) or {}
        if not schemas:
            pytest.skip("the provider declares no response_schemas")
        provider = self._provider(tmp_path)
        strategies = {kind: from_schema(provider_schema(name, cls)) for kind, name in sorted(schemas.items())}

        @self._settings()
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            kind = data.draw(st.sampled_from(sorted(strategies)), label="kind")
            doc = data.draw(strategies[kind], label=f"{kind} body")
            feed_parser(provider, kind, doc, data)

        check()

    def test_property_parsers_survive_arbitrary_json(self, tmp_path: Path) -> None:
        from hypothesis import given
        from hypothesis import strategies as st

        from kling_core.testing.schema_strategy import arbitrary_json

        cls = self._http_only()
        provider = self._provider(tmp_path)
        kinds = sorted({"submit", "status", *getattr(cls, "response_schemas", {})})

        @self._settings()
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            kind = data.draw(st.sampled_from(kinds), label="kind")
            # JSON of any shape, or a body that is not JSON at all (an HTML error page, a cut-off answer)
            doc = data.draw(arbitrary_json() | st.builds(RawBody, st.sampled_from(NOT_JSON_BODIES)), label="body")
            feed_parser(provider, kind, doc, data)

        check()


async def _no_sleep(seconds: float) -> None:
    return None


