"""The cassette format: schema, loader messages, request matching and replay diagnostics."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from kling_core.errors import ValidationError
from kling_core.testing.cassettes import cassette_schema, load_cassette, parse_cassette
from kling_core.testing.matching import request_problems, value_matches
from kling_core.testing.replay import replay

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "kling-example-provider" / "kling_example" / "cassettes"
FAL = ROOT / "plugins" / "kling_core_plugins" / "fal" / "cassettes"
ALL_CASSETTES = sorted(
    p for p in ROOT.glob("**/cassettes/*.json") if not {".git", ".nox", "build"} & set(p.parts)
)


def _doc(name: str = "success-o1.json") -> dict[str, Any]:
    return json.loads((EXAMPLE / name).read_text("utf-8"))  # type: ignore[no-any-return]


def test_schema_is_valid_draft_2020_12() -> None:
    import jsonschema

    schema = cassette_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", ALL_CASSETTES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_cassette_in_the_repo_loads(path: Path) -> None:
    cassette = load_cassette(path)
    assert cassette.scenario == path.stem, "a cassette file is named after its scenario"


def test_the_repo_has_cassettes() -> None:
    assert len([p for p in ALL_CASSETTES if p.is_relative_to(EXAMPLE)]) >= 10


def test_loader_names_file_and_field(tmp_path: Path) -> None:
    doc = _doc()
    doc["steps"][1]["interactions"][0]["request"]["method"] = "FETCH"
    doc["steps"][0]["interactions"][0]["provenance"] = {"source": "documented"}  # no url
    del doc["scenario"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(ValidationError) as info:
        load_cassette(path)
    text = str(info.value)
    assert str(path) in text
    assert "steps[1].interactions[0].request.method: 'FETCH' is not one of" in text
    assert "steps[0].interactions[0].provenance: 'url' is a required property" in text
    assert "(document): 'scenario' is a required property" in text


def test_loader_checks_the_request_and_the_error_class(tmp_path: Path) -> None:
    doc = _doc("error-rate-limited.json")
    doc["request"]["quality"] = "ultra"
    doc["steps"][0]["expect"]["error"]["type"] = "RateLimitError"
    with pytest.raises(ValidationError) as info:
        parse_cassette(doc, tmp_path / "x.json")
    text = str(info.value)
    assert "request.quality: 'ultra' is not one of std, pro" in text
    assert "steps[0].expect.error.type: 'RateLimitError' is not an error class in kling_core.errors" in text


def test_status_step_needs_a_handle(tmp_path: Path) -> None:
    doc = _doc()
    doc["steps"] = doc["steps"][1:]
    with pytest.raises(ValidationError, match=r"steps\[0\]\.op: 'status' needs an earlier submit or resume step"):
        parse_cassette(doc, tmp_path / "x.json")


def test_loader_reports_bad_json_with_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": 1,,}', "utf-8")
    with pytest.raises(ValidationError, match=r"broken.json.*not JSON: .* line 1 column 14"):
        load_cassette(path)


@pytest.mark.parametrize(
    ("recorded", "sent", "ok"),
    [
        ("Key <SECRET>", "Key abc123", True),
        ("Key <SECRET>", "Key ", False),
        ("Key <SECRET>", "Bearer abc123", False),
        ("Key <SECRET>", "Key a b", False),
        ("<SECRET>", "SG_abc", True),
        ("<SECRET>", "", False),
        ("application/json", "application/json", True),
        ("application/json", "text/plain", False),
    ],
)
def test_secret_marker_rule(recorded: str, sent: str, ok: bool) -> None:
    assert value_matches(recorded, sent) is ok


def _recorded_submit() -> Any:
    from kling_core.testing.cassettes import _request

    return _request(_doc()["steps"][0]["interactions"][0]["request"])


def _sent(body: Any, *, url: str = "https://api.example-video.test/v1/edits", headers: Any = None) -> httpx.Request:
    h = {"authorization": "Bearer tok", "content-type": "application/json"} if headers is None else headers
    return httpx.Request("POST", url, json=body, headers=h)


def test_request_matching_exact_subset_and_query() -> None:
    rec = _recorded_submit()
    body = copy.deepcopy(rec.json)
    assert request_problems(rec, _sent(body)) == []
    extra = {**body, "seed": 1}
    [problem] = request_problems(rec, _sent(extra))
    assert problem.startswith("json body differs (exact match)") and '+  "seed": 1' in problem
    subset = attrs.evolve(rec, match_json="subset")
    assert request_problems(subset, _sent(extra)) == []
    assert "model: expected \"o1\", got \"o3\"" in request_problems(subset, _sent({**body, "model": "o3"}))[0]
    [q] = request_problems(rec, _sent(body, url="https://api.example-video.test/v1/edits?x=1"))
    assert q.startswith("query: recorded [], sent [('x', '1')]")
    assert request_problems(attrs.evolve(rec, match_query="ignore"), _sent(body, url="https://api.example-video.test/v1/edits?x=1")) == []
    [h] = request_problems(rec, _sent(body, headers={"content-type": "application/json", "authorization": "Key tok"}))
    assert h == "header authorization: expected 'Bearer <SECRET>', got 'Key <SECRET>'"


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("Token sk-live-abc123", "'Token <SECRET>'"),  # the scheme word shows, the key does not
        ("Bearer tok1 tok2", "'Bearer <SECRET> <SECRET>'"),
        ("SG_fake123456abcd", "'<SECRET>'"),  # fake; a bare key is never taken for a scheme word
        ("sk-live-1 tok", "'<SECRET>'"),
    ],
)
def test_auth_mismatch_shows_the_scheme_never_the_key(sent: str, shown: str) -> None:
    rec = _recorded_submit()
    [h] = request_problems(rec, _sent(copy.deepcopy(rec.json), headers={"authorization": sent, "content-type": "application/json"}))
    assert h == f"header authorization: expected 'Bearer <SECRET>', got {shown}"
    assert not any(part in h for part in sent.split()[1:] or [sent])


def test_covers_declares_completed_with_error(tmp_path: Path) -> None:
    doc = _doc("job-failed-content.json")
    assert load_cassette(FAL / "completed-with-error.json").covers == ("completed_with_error",)
    assert load_cassette(EXAMPLE / "job-failed-content.json").covers == ()
    doc["covers"] = ["completed-with-error"]
    with pytest.raises(ValidationError, match=r"covers\[0\]: 'completed-with-error' is not one of"):
        parse_cassette(doc, tmp_path / "x.json")
    # Only a scenario ending in a failed job can show it.
    success = _doc()
    success["covers"] = ["completed_with_error"]
    with pytest.raises(ValidationError, match="covers: 'completed_with_error' needs a last step expecting a failed status"):
        parse_cassette(success, tmp_path / "success-o1.json")
    assert load_cassette(EXAMPLE / "success-o1.json").covers == ()


def test_replay_reports_step_interaction_and_diff(tmp_path: Path) -> None:
    ExampleProvider = pytest.importorskip("kling_example").ExampleProvider

    doc = _doc()
    doc["steps"][0]["interactions"][0]["request"]["json"]["quality"] = "standard"
    doc["steps"][2]["expect"]["status"]["progress"] = 50.0
    outcome = replay(ExampleProvider, parse_cassette(doc, tmp_path / "success-o1.json"))
    assert len(outcome.failures) == 2, outcome.failures
    first, second = outcome.failures
    assert first.startswith("step 1 (submit), interaction 1 of 1 (POST https://api.example-video.test/v1/edits): json body differs")
    assert '-  "quality": "standard",' in first and '+  "quality": "high",' in first
    assert second == "step 3 (status): status: progress: expected 50.0, got 40.0"
    with pytest.raises(AssertionError, match="success-o1"):
        outcome.check()


def test_replay_requires_every_interaction(tmp_path: Path) -> None:
    ExampleProvider = pytest.importorskip("kling_example").ExampleProvider

    doc = _doc("status-retry-overloaded.json")
    # A third recorded GET that the provider has no reason to make.
    step = doc["steps"][1]
    step["interactions"].append(copy.deepcopy(step["interactions"][1]))
    outcome = replay(ExampleProvider, parse_cassette(doc, tmp_path / "x.json"))
    assert outcome.failures == [
        "step 2 (status), interaction 3 of 3 (GET https://api.example-video.test/v1/edits/ed_7Hc2kQ9xP): "
        "recorded but never requested"
    ]


def test_replay_honours_retry_after_through_injected_sleep(tmp_path: Path) -> None:
    ExampleProvider = pytest.importorskip("kling_example").ExampleProvider

    outcome = replay(ExampleProvider, load_cassette(EXAMPLE / "status-retry-overloaded.json"))
    assert outcome.failures == []
    assert outcome.sleeps == [2.0], "the 503's Retry-After: 2 was slept through ctx.sleep, not for real"


def test_replay_flags_requests_that_bypass_the_injected_transport(tmp_path: Path) -> None:
    ExampleProvider = pytest.importorskip("kling_example").ExampleProvider

    class OwnClient(ExampleProvider):
        @property
        def client(self) -> httpx.AsyncClient:  # ignores ctx.transport
            if self._client is None:
                self._client = httpx.AsyncClient()
            return self._client

    outcome = replay(OwnClient, load_cassette(EXAMPLE / "error-invalid-key.json"))
    assert any("did not go through ProviderContext.transport" in f for f in outcome.failures), outcome.failures
