"""The contract suite catches broken plugins: mutants of the example provider must fail it.

Each mutant changes one thing a real plugin gets wrong (a field name, the auth header, a status
mapping, an error mapping, a resubmit, a key in the URL). The suite runs once, in a child
pytest, over all of them plus the unmutated provider; each test here reads that run's report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("kling_example", reason="pip install -e examples/kling-example-provider")

MUTANTS = textwrap.dedent(
    '''
    from typing import Any

    import attrs

    from kling_core.http import ErrorTable
    from kling_core.contract.status import Queued, Running
    from kling_core.errors import SubmitUncertainError
    from kling_core.testing import ProviderContractTests
    from kling_example import ExampleProvider, wire


    class WrongFieldName(ExampleProvider):
        def build_submit(self, request):
            built = super().build_submit(request)
            import json
            body = json.loads(built.content)
            body["video_url"] = body.pop("source_video_url")
            return self.make_request("POST", str(built.url), json_body=body)


    class WrongAuthHeader(ExampleProvider):
        auth_header = "x-api-key"
        auth_scheme = ""


    class WrongAuthScheme(ExampleProvider):  # the key is right, the scheme word is not
        auth_scheme = "Token"


    class FailedAsRunning(ExampleProvider):
        async def status(self, handle):  # the host's "failed" read as still running
            status = await super().status(handle)
            return Running(status.job_id, status.provider) if status.state == "failed" else status


    class WrongStatusMapping(ExampleProvider):
        def parse_status(self, response, handle):
            status = super().parse_status(response, handle)
            if status.state == "running":  # "processing" read as still queued
                return Queued(status.job_id, status.provider)
            return status


    class MissingErrorMapping(ExampleProvider):
        error_table = ErrorTable(by_code={k: v for k, v in wire.ERRORS.by_code.items() if k != "content_rejected"})


    class ResubmitsAfterTimeout(ExampleProvider):
        async def submit(self, request):
            try:
                return await super().submit(request)
            except SubmitUncertainError:
                return await super().submit(request)  # the double-charge bug


    class KeyInUrl(ExampleProvider):
        def build_status(self, handle):
            built = super().build_status(handle)
            key = self.secrets["api_key"].reveal()
            return self.make_request("GET", str(built.url.copy_add_param("key", key)))


    class CrashingParser(ExampleProvider):
        def parse_status(self, response, handle):
            body = response.json()
            if body.get("status") == "succeeded":
                body["output"]["url"]  # a KeyError/TypeError on a shape the docs do not promise
            return super().parse_status(response, handle)


    class OverclaimedCapabilities(ExampleProvider):
        # The host documents at most 4 reference images; these capabilities claim 6.
        capabilities = attrs.evolve(
            ExampleProvider.capabilities,
            models=tuple(attrs.evolve(m, max_references=6, max_images=6) for m in ExampleProvider.capabilities.models),
        )


    class _Base(ProviderContractTests):
        provider_name = "example"
        cassette_dir = ExampleProvider.cassette_dir
        property_examples = 25
        property_derandomize = True  # the same examples every run: a mutant is caught or not, never by luck


    class TestUnmutated(_Base):
        provider_cls = ExampleProvider

    '''
)
NAMES = (
    "WrongFieldName", "WrongAuthHeader", "WrongAuthScheme", "WrongStatusMapping", "FailedAsRunning",
    "MissingErrorMapping", "ResubmitsAfterTimeout", "KeyInUrl", "CrashingParser", "OverclaimedCapabilities",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str | None]]:
    """class name -> {test name: failure text, or None when it passed/skipped}."""
    root = tmp_path_factory.mktemp("mutants")
    source = MUTANTS + "".join(f"\n\nclass Test{n}(_Base):\n    provider_cls = {n}\n" for n in NAMES)
    (root / "test_mutants.py").write_text(source, "utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", "utf-8")
    xml = root / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "KLING_RECORD"}
    subprocess.run(
        [sys.executable, "-m", "pytest", str(root), "-c", str(root / "pytest.ini"), "--rootdir", str(root),
         "-p", "no:cacheprovider", "-p", "no:randomly", "-q", f"--junitxml={xml}"],
        capture_output=True, timeout=600, check=False, env=env, cwd=root,
    )
    out: dict[str, dict[str, str | None]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        failure = case.find("failure")
        error = case.find("error")
        bad = failure if failure is not None else error
        text = None if bad is None else f"{bad.get('message', '')}\n{bad.text or ''}"
        out.setdefault(cls, {})[case.get("name", "")] = text
    return out


def _failures(report: dict[str, dict[str, str | None]], cls: str) -> dict[str, str]:
    assert cls in report, f"{cls} did not run: {sorted(report)}"
    return {name: text for name, text in report[cls].items() if text is not None}


def test_unmutated_example_passes_everything(report: dict[str, dict[str, str | None]]) -> None:
    assert len(report["TestUnmutated"]) >= 25
    assert _failures(report, "TestUnmutated") == {}


def test_wrong_field_name_is_caught(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestWrongFieldName")
    wire = [t for n, t in failed.items() if n.startswith("test_wire_cassette_replays[")]
    assert wire, failed.keys()
    assert all("json body differs" in t and '"source_video_url"' in t and '"video_url"' in t for t in wire)
    # the property half names the schema and the field too
    assert "source_video_url" in failed["test_property_submit_body_matches_host_schema"]
    # the outcome-level half is not fooled into failing: the responses still parse
    assert "test_behaviour_job_succeeds" not in failed


def test_wrong_auth_header_is_caught(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestWrongAuthHeader")
    wire = {n: t for n, t in failed.items() if n.startswith("test_wire_cassette_replays[")}
    # every scenario that sends a request fails, naming the header
    assert len(wire) >= 13
    assert all("header authorization: expected 'Bearer <SECRET>', not sent" in t for t in wire.values())


def test_wrong_auth_scheme_shows_the_scheme_not_the_key(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestWrongAuthScheme")
    assert {n for n in failed if not n.startswith("test_wire_cassette_replays[")} == set()
    text = failed["test_wire_cassette_replays[success-o1]"]
    assert "cassette " in text and "success-o1.json" in text and "step 1 (submit)" in text
    assert "header authorization: expected 'Bearer <SECRET>', got 'Token <SECRET>'" in text
    assert "sk-CANARY" not in text


def test_failed_read_as_running_fails_the_suite(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestFailedAsRunning")
    assert "job-failed-content.json: the job ended running, expected failed" in failed["test_behaviour_job_fails"]
    text = failed["test_wire_cassette_replays[job-failed-content]"]
    assert "job-failed-content.json" in text and 'status: state: expected "failed", got "running"' in text
    assert "test_wire_cassette_replays[job-failed-content]" in failed
    assert "test_behaviour_job_succeeds" not in failed


def test_wrong_status_mapping_is_caught(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestWrongStatusMapping")
    text = failed["test_wire_cassette_replays[success-o1]"]
    assert 'status: state: expected "running", got "queued"' in text
    assert "step 3 (status)" in text
    assert "test_behaviour_job_succeeds" in failed


def test_missing_error_mapping_is_caught(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestMissingErrorMapping")
    text = failed["test_wire_cassette_replays[error-content-rejected]"]
    assert "expected ContentPolicyError, got ProviderValidationError" in text
    assert "expected ContentPolicyError" in failed["test_behaviour_errors_map"]
    # the message names the cassette file, the step and the plugin's table entry that decided
    behaviour = failed["test_behaviour_errors_map"]
    assert "error-content-rejected.json: step 1 (submit): expected ContentPolicyError" in behaviour
    assert "step 1 (submit): the plugin's table entry: " in text and "step 1 (submit): the plugin's table entry: " in behaviour
    # the other error scenarios still map right
    assert "test_wire_cassette_replays[error-rate-limited]" not in failed


def test_resubmit_after_timeout_is_caught(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestResubmitsAfterTimeout")
    text = failed["test_wire_cassette_replays[submit-timeout-after-sending]"]
    assert "unexpected request POST https://api.example-video.test/v1/edits" in text


def test_key_in_url_is_caught(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestKeyInUrl")
    text = failed["test_wire_cassette_replays[success-o1]"]
    assert "the credential appears in the URL" in text
    assert "sk-CANARY" not in text, "the failure message itself must not print the credential"


def test_parser_crash_is_caught_by_the_property_half(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestCrashingParser")
    assert set(failed) <= {"test_property_parsers_take_documented_responses", "test_property_parsers_survive_arbitrary_json"}
    text = failed["test_property_parsers_survive_arbitrary_json"]
    assert "only ProtocolError is allowed" in text and "parse of a status body raised" in text


def test_overclaimed_capabilities_are_caught_by_the_host_schema(report: dict[str, dict[str, str | None]]) -> None:
    failed = _failures(report, "TestOverclaimedCapabilities")
    assert set(failed) == {"test_property_submit_body_matches_host_schema"}
    text = failed["test_property_submit_body_matches_host_schema"]
    assert "breaks example-edit-request.schema.json" in text and "reference_image_urls" in text and "is too long" in text


def test_each_mutant_fails_only_where_expected(report: dict[str, dict[str, str | None]]) -> None:
    """No mutant makes the suite crash wholesale: most of its tests still pass."""
    for name in NAMES:
        results = report[f"Test{name}"]
        assert len(results) == len(report["TestUnmutated"]), name
        assert 0 < len(_failures(report, f"Test{name}")) < len(results), name
