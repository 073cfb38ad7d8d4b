"""Hosts as data: one wrong value in a plugin's tables must fail the contract suite.

The SDK describes a host as data (``spec: HostSpec``, ``error_table``, ``auth_scheme``), so the
bugs a plugin author makes are wrong data. Each mutant below is a subclass of a shipped plugin
(the example, fal, kling) whose data is the real table ``attrs.evolve``d in one place, and no
method is overridden. The suite runs once, in a child pytest, over every mutant and the
unmutated plugins, composed the way ``kling contract`` composes it (``ProviderContractTests``
with ``provider_name``, ``provider_cls`` and ``default_cassette_dir``), restricted to the
behaviour and wire halves (the property half has its own mutation tests). Each test here reads
that run's report: which suite test failed, and whether its message names the cassette file,
the step and, where it applies, the scheme word or the table entry.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import pytest
from kit_children import Report, failures, run_suites

pytest.importorskip("kling_example", reason="pip install -e examples/kling-example-provider")

from kling_core_plugins.fal import FalProvider
from kling_core_plugins.kling import KlingProvider
from kling_example import ExampleProvider

from kling_core.sdk import field
from kling_core.testing import Cassette, load_cassettes
from kling_core.testing.suite import default_cassette_dir

MUTANTS = textwrap.dedent(
    '''
    import attrs

    from kling_core.sdk import ErrorRule, ProviderValidationError
    from kling_core_plugins.fal import FalProvider
    from kling_core_plugins.kling import KlingProvider
    from kling_example import ExampleProvider


    def failed_as_running(spec):
        """The host's failed state names mapped to "running": a failed job polled forever."""
        states = {name: "running" if meaning == "failed" else meaning for name, meaning in spec.status.states.items()}
        return attrs.evolve(spec, status=attrs.evolve(spec.status, states=states))


    def with_rule(table, code, rule):
        return attrs.evolve(table, by_code={**table.by_code, code: rule})


    # 1. failed mapped to running (fal has no failed state name: its failures come as errors)
    class ExampleFailedAsRunning(ExampleProvider):
        spec = failed_as_running(ExampleProvider.spec)


    class KlingFailedAsRunning(KlingProvider):
        spec = failed_as_running(KlingProvider.spec)


    # 2. "COMPLETED" carrying error/error_type read as a success
    class FalCompletedErrorIgnored(FalProvider):
        spec = attrs.evolve(FalProvider.spec, status=attrs.evolve(FalProvider.spec.status, completed_error=()))


    # 3. the wrong auth scheme word (the key itself is right)
    class FalTokenScheme(FalProvider):
        auth_scheme = "Token"


    class ExampleTokenScheme(ExampleProvider):
        auth_scheme = "Token"


    # 4. an error inside an HTTP 200 envelope ignored
    class KlingBodyErrorIgnored(KlingProvider):
        spec = attrs.evolve(KlingProvider.spec, errors=attrs.evolve(KlingProvider.spec.errors, body_error=None))


    # 5. a wrong error-table entry
    class ExampleWrongErrorClass(ExampleProvider):  # a moderation refusal read as a bad request
        error_table = with_rule(ExampleProvider.error_table, "content_rejected", ErrorRule(ProviderValidationError, False))


    class FalWrongErrorEntry(FalProvider):  # a transient scheduling failure read as a bad request
        error_table = with_rule(FalProvider.error_table, "runner_scheduling_failure",
                                ErrorRule(ProviderValidationError, False))


    class FalWrongContentPolicyEntry(FalProvider):  # no fal cassette reaches this entry (see its test)
        error_table = with_rule(FalProvider.error_table, "content_policy_violation",
                                ErrorRule(ProviderValidationError, False))


    # 6. the result URL read from the wrong field
    class FalResultUrlWrongField(FalProvider):
        spec = attrs.evolve(FalProvider.spec, result=attrs.evolve(FalProvider.spec.result, url=("video.href",)))


    class ExampleResultUrlWrongField(ExampleProvider):
        spec = attrs.evolve(ExampleProvider.spec, result=attrs.evolve(ExampleProvider.spec.result, url=("output.href",)))
    '''
)
UNMUTATED: Mapping[str, type[Any]] = {"ExampleProvider": ExampleProvider, "FalProvider": FalProvider,
                                      "KlingProvider": KlingProvider}
# mutant -> (the plugin it mutates, the one class attribute it changes)
MUTATED: Mapping[str, tuple[type[Any], str]] = {
    "ExampleFailedAsRunning": (ExampleProvider, "spec"),
    "KlingFailedAsRunning": (KlingProvider, "spec"),
    "FalCompletedErrorIgnored": (FalProvider, "spec"),
    "FalTokenScheme": (FalProvider, "auth_scheme"),
    "ExampleTokenScheme": (ExampleProvider, "auth_scheme"),
    "KlingBodyErrorIgnored": (KlingProvider, "spec"),
    "ExampleWrongErrorClass": (ExampleProvider, "error_table"),
    "FalWrongErrorEntry": (FalProvider, "error_table"),
    "FalWrongContentPolicyEntry": (FalProvider, "error_table"),
    "FalResultUrlWrongField": (FalProvider, "spec"),
    "ExampleResultUrlWrongField": (ExampleProvider, "spec"),
}

@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """One child pytest over every suite class; class name -> {test name: (outcome, text)}."""
    return run_suites(tmp_path_factory.mktemp("data-mutants"), "test_data_mutants.py", MUTANTS,
                      (*UNMUTATED, *MUTATED))


def _cassettes(provider: type[Any]) -> list[Cassette]:
    return load_cassettes(default_cassette_dir(provider))


def _wire(scenario: str) -> str:
    return f"test_wire_cassette_replays[{scenario}]"


def _last_step(c: Cassette) -> str:
    return f"step {len(c.steps)} ({c.steps[-1].op})"


def test_unmutated_plugins_pass_the_same_selection(report: Report) -> None:
    """Without a mutation nothing fails, and the tests the mutants fail really ran."""
    for name, provider in UNMUTATED.items():
        results = report[f"Test{name}"]
        assert failures(report, name) == {}, name
        wire = {n for n in results if n.startswith("test_wire_cassette_replays[")}
        assert wire == {_wire(c.scenario) for c in _cassettes(provider)}, name
        assert all(results[n][0] == "passed" for n in wire), name
        assert any(n.startswith("test_behaviour_") for n in results), name
        assert not any(n.startswith("test_property_") for n in results), "the -k selection leaked"
    ran = {("ExampleProvider", "test_behaviour_job_fails"), ("KlingProvider", "test_behaviour_job_fails"),
           ("FalProvider", "test_behaviour_completed_with_error_fails"), ("FalProvider", "test_behaviour_job_succeeds"),
           ("ExampleProvider", "test_behaviour_errors_map"), ("KlingProvider", "test_behaviour_errors_map")}
    for name, test in ran:
        assert report[f"Test{name}"][test][0] == "passed", (name, test)


def test_mutants_change_one_data_attribute_only() -> None:
    """Each mutant is a data change: one class attribute, a real (not no-op) difference."""
    namespace: dict[str, Any] = {}
    exec(compile(MUTANTS, "<mutants>", "exec"), namespace)  # our own source, above
    for name, (base, attr) in MUTATED.items():
        cls = namespace[name]
        assert cls.__bases__ == (base,), name
        own = {k for k in vars(cls) if not k.startswith("_")}
        assert own == {attr}, (name, own)
        assert getattr(cls, attr) != getattr(base, attr), f"{name}: the mutation changes nothing"


@pytest.mark.parametrize(("mutant", "provider", "cassette"), [
    ("ExampleFailedAsRunning", ExampleProvider, "job-failed-content.json"),
    ("KlingFailedAsRunning", KlingProvider, "failed-risk-control.json"),
])
def test_failed_state_mapped_to_running_is_caught(report: Report, mutant: str, provider: type[Any],
                                                  cassette: str) -> None:
    failed = failures(report, mutant)
    ends_failed = {c.scenario for c in _cassettes(provider) if c.outcome() == "failed"}
    assert cassette.removesuffix(".json") in ends_failed
    # exactly the scenarios of a failed job fail; a success still succeeds
    assert set(failed) == {"test_behaviour_job_fails"} | {_wire(s) for s in ends_failed}
    state = 'step 2 (status): status: state: expected "failed", got "running"'
    wire = failed[_wire(cassette.removesuffix(".json"))]
    assert cassette in wire and state in wire
    behaviour = failed["test_behaviour_job_fails"]
    assert f"{cassette}: {state}" in behaviour
    assert f"{cassette}: the job ended running, expected failed" in behaviour


def test_completed_with_error_reported_as_success_is_caught(report: Report) -> None:
    failed = failures(report, "FalCompletedErrorIgnored")
    # completed-with-error-result-422 still ends failed (its result answers 422), but with the
    # result's detail alone: the status's own error is missing from the message.
    assert set(failed) == {_wire("completed-with-error"), _wire("completed-with-error-result-422"),
                           "test_behaviour_job_fails", "test_behaviour_completed_with_error_fails"}
    assert "Invalid status code: 422" in failed[_wire("completed-with-error-result-422")]
    wire = failed[_wire("completed-with-error")]
    assert "completed-with-error.json" in wire
    assert "step 2 (status): expected status {'state': 'failed'" in wire
    for name in ("test_behaviour_completed_with_error_fails", "test_behaviour_job_fails"):
        behaviour = failed[name]
        assert "completed-with-error.json: step 2 (status)" in behaviour, name
        assert "completed-with-error.json: the job ended " in behaviour and ", expected failed" in behaviour, name


@pytest.mark.parametrize(("mutant", "provider", "scheme", "cassette"), [
    ("FalTokenScheme", FalProvider, "Key", "success-o1-pro"),
    ("ExampleTokenScheme", ExampleProvider, "Bearer", "success-o1"),
])
def test_wrong_auth_scheme_is_caught_with_the_secret_masked(report: Report, mutant: str, provider: type[Any],
                                                           scheme: str, cassette: str) -> None:
    failed = failures(report, mutant)
    # every scenario that sends the credential fails in the wire half; the behaviour half,
    # which does not compare requests, is not fooled into failing
    signed = {c.scenario for c in _cassettes(provider)
              if any("authorization" in {h.lower() for h in i.request.headers} for i in c.interactions)}
    assert set(failed) == {_wire(s) for s in signed}
    header = f"header authorization: expected '{scheme} <SECRET>', got 'Token <SECRET>'"
    assert all(header in text and "sk-CANARY" not in text for text in failed.values())
    text = failed[_wire(cassette)]
    assert f"{cassette}.json" in text and "step 1 (submit), interaction 1 of 1 (POST https://" in text


def test_error_inside_http_200_ignored_is_caught(report: Report) -> None:
    failed = failures(report, "KlingBodyErrorIgnored")
    rule = KlingProvider.spec.errors.body_error
    assert rule is not None
    # the scenarios with a 2xx answer that the real rule reads as an error
    in_body = {c.scenario for c in _cassettes(KlingProvider)
               if any(200 <= i.response.status < 300 and rule.holds(field(i.response.json, rule.path))
                      for i in c.interactions)}
    assert {"error-code-on-http-200", "status-code-on-http-200"} <= in_body
    assert set(failed) == {"test_behaviour_errors_map"} | {_wire(s) for s in in_body}
    submit = failed[_wire("error-code-on-http-200")]
    assert "error-code-on-http-200.json" in submit
    assert "step 1 (submit): expected ProviderValidationError, got SubmitUncertainError" in submit
    status = failed[_wire("status-code-on-http-200")]
    assert "status-code-on-http-200.json" in status
    assert "step 2 (status): expected ProviderError, got ProtocolError" in status
    behaviour = failed["test_behaviour_errors_map"]
    assert "error-code-on-http-200.json: step 1 (submit): expected ProviderValidationError" in behaviour
    assert "status-code-on-http-200.json: step 2 (status): " in behaviour


def test_wrong_error_class_in_the_table_is_caught_naming_the_entry(report: Report) -> None:
    failed = failures(report, "ExampleWrongErrorClass")
    assert set(failed) == {_wire("error-content-rejected"), "test_behaviour_errors_map"}
    entry = "step 1 (submit): the plugin's table entry: error_table.by_code['content_rejected']"
    wire = failed[_wire("error-content-rejected")]
    assert "error-content-rejected.json" in wire
    assert "step 1 (submit): expected ContentPolicyError, got ProviderValidationError" in wire and entry in wire
    behaviour = failed["test_behaviour_errors_map"]
    assert "error-content-rejected.json: step 1 (submit): expected ContentPolicyError, got ProviderValidationError" in behaviour
    assert f"error-content-rejected.json: {entry}" in behaviour


def test_wrong_fal_table_entry_is_caught_naming_the_entry(report: Report) -> None:
    failed = failures(report, "FalWrongErrorEntry")
    assert set(failed) == {_wire("error-503-runner-scheduling"), "test_behaviour_errors_map"}
    entry = "step 1 (submit): the plugin's table entry: error_table.by_code['runner_scheduling_failure']"
    # the cassette expects exactly ProviderError: a subclass from a wrong entry does not pass
    wrong = "step 1 (submit): expected ProviderError, got ProviderValidationError"
    wire = failed[_wire("error-503-runner-scheduling")]
    assert "error-503-runner-scheduling.json" in wire and wrong in wire and entry in wire
    behaviour = failed["test_behaviour_errors_map"]
    assert f"error-503-runner-scheduling.json: {wrong}" in behaviour
    assert f"error-503-runner-scheduling.json: {entry}" in behaviour


@pytest.mark.xfail(strict=True, reason=(
    "no fal cassette reaches error_table.by_code['content_policy_violation']: fal reports a refused "
    "prompt as a failed job (the result GET's 422, read through spec.status.failure_kinds), and no "
    "cassette shows that code in an error answer; add one (e.g. a submit refused with "
    "x-fal-error-type: content_policy_violation) and drop this marker"))
def test_wrong_fal_content_policy_entry_is_caught(report: Report) -> None:
    failed = failures(report, "FalWrongContentPolicyEntry")
    assert any("error_table.by_code['content_policy_violation']" in text for text in failed.values()), failed


@pytest.mark.parametrize(("mutant", "provider", "detail"), [
    ("FalResultUrlWrongField", FalProvider, "the result lacks video.href"),
    ("ExampleResultUrlWrongField", ExampleProvider, "a completed job without an output video"),
])
def test_result_url_from_the_wrong_field_is_caught(report: Report, mutant: str, provider: type[Any],
                                                    detail: str) -> None:
    failed = failures(report, mutant)
    successes = [c for c in _cassettes(provider) if c.outcome() == "succeeded"]
    assert len(successes) >= 2
    assert set(failed) == {"test_behaviour_job_succeeds"} | {_wire(c.scenario) for c in successes}
    behaviour = failed["test_behaviour_job_succeeds"]
    for c in successes:
        wire = failed[_wire(c.scenario)]
        step = _last_step(c)
        assert step.endswith("(status)"), c.scenario
        assert c.path.name in wire and f"{step}: expected status {{'state': 'succeeded'" in wire, c.scenario
        assert detail in wire, c.scenario
        assert f"{c.path.name}: {step}: expected status" in behaviour, c.scenario
        assert f"{c.path.name}: the job ended with ProtocolError" in behaviour, c.scenario
