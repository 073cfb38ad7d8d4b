"""Every schema `kling schema` prints is self-contained: validated offline, with no registry.

The shipped files refer to one another (`job-status` to `edit-result`) under an `$id` on a
domain that is an identifier, not a server; a validator given the printed schema alone must
resolve every `$ref` without a network. Here the validator's registry refuses every lookup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from kling_core.cli.info_cmd import schema_text
from kling_core.config import KlingConfig, config_from_document, config_to_document
from kling_core.contract.models import Cost, EditRequest, EditResult, Element, OutputVideo, Timings
from kling_core.contract.status import Cancelled, Failed, JobError, Queued, Running, Succeeded
from kling_core.schema_store import bundle, load_schema, schema_names
from kling_core.serialization import unstructure
from kling_core.testing.schema_strategy import from_schema

ROOT = Path(__file__).resolve().parents[1]
LOOKUPS: list[str] = []


def _refuse(uri: str) -> Any:
    LOOKUPS.append(uri)
    raise NoSuchResource(ref=uri)


OFFLINE = Registry(retrieve=_refuse)


def printed(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(schema_text(name))
    return doc


def offline_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=OFFLINE)


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        here = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return here + [r for k, v in node.items() if k not in ("const", "enum", "default", "examples") for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


RESULT = EditResult(
    video=OutputVideo(url="https://cdn.example/out.mp4", content_type="video/mp4", file_size=1234, path="/tmp/out.mp4"),
    job_id="job-1", provider="mock", model="kling-o1",
    timings=Timings(submitted_at=1.0, started_at=2.0, completed_at=3.0),
    cost=Cost(credits=2.0, currency="USD"), report={"grade": "warm"},
)
STATUSES = [
    Queued(job_id="job-1", provider="mock", position=3),
    Running(job_id="job-1", provider="mock", progress=54.0, logs=("rendering",)),
    Succeeded(job_id="job-1", provider="mock", result=RESULT),
    Failed(job_id="job-1", provider="fal", error=JobError(message="rejected", code="x", retryable=False)),
    Cancelled(job_id="job-1", provider="mock"),
]
REQUEST = EditRequest(
    prompt="replace the sky with @Image1, keep @Element1", video="clip.mp4", images=("sky.png",),
    elements=(Element(frontal_image="f.png", reference_images=("r.png",)),), quality="std", model="kling-o3",
)
CONFIG = config_from_document({
    "default_provider": "fal",
    "defaults": {"quality": "pro", "keep_audio": True},
    "providers": {"fal": {"key": "env:FAL_KEY", "poll": {"initial": 1.0}}, "mock": {"options": {"latency": 0.5}}},
})
CASSETTE = next((ROOT / "plugins" / "kling_core_plugins" / "fal" / "cassettes").glob("success-*.json"))

# Real documents for the core schemas, built from the models (as the CLI and API print them).
DOCUMENTS: dict[str, list[Any]] = {
    "job-status": [unstructure(s) for s in STATUSES],
    "edit-result": [unstructure(RESULT)],
    "edit-request": [unstructure(REQUEST)],
    "config": [config_to_document(CONFIG), config_to_document(KlingConfig())],
    "cassette": [json.loads(CASSETTE.read_text())],
}


def test_every_schema_is_listed_and_printed() -> None:
    names = schema_names()
    assert set(DOCUMENTS) <= set(names)
    assert len([n for n in names if n.startswith("providers/")]) >= 10


@pytest.mark.parametrize("name", schema_names())
def test_the_printed_schema_is_self_contained(name: str) -> None:
    schema = printed(name)
    assert all(r.startswith("#") for r in refs(schema)), refs(schema)
    LOOKUPS.clear()
    validator = offline_validator(schema)
    for doc in DOCUMENTS.get(name, []):
        errors = [e.message for e in validator.iter_errors(doc)]
        assert errors == [], f"{name}: {errors}"
    assert LOOKUPS == []


@pytest.mark.parametrize("name", [n for n in schema_names() if n not in ("job-status", "cassette")])
def test_generated_documents_validate_offline(name: str) -> None:
    # Documents drawn from the printed schema (local refs only) validate against it, offline.
    schema = printed(name)
    validator = offline_validator(schema)

    @settings(max_examples=10, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(doc=from_schema(schema))
    def check(doc: Any) -> None:
        assert validator.is_valid(doc)

    check()
    assert LOOKUPS == []


def test_job_status_enforces_the_bundled_edit_result() -> None:
    validator = offline_validator(printed("job-status"))
    doc = unstructure(STATUSES[2])
    doc["result"]["video"] = {"content_type": "video/mp4"}  # no url
    assert [e.message for e in validator.iter_errors(doc)] == ["'url' is a required property"]
    doc["result"] = {"video": {"url": "u"}, "job_id": "j", "provider": "p", "model": "m", "extra": 1}
    assert not validator.is_valid(doc)


def test_the_file_itself_needs_the_other_file() -> None:
    # What the issue saw: the shipped file alone (not bundled) is unresolvable offline.
    raw = load_schema("job-status")
    validator = jsonschema.Draft202012Validator(raw, registry=OFFLINE)
    with pytest.raises(Unresolvable):
        validator.validate(unstructure(STATUSES[2]))


def test_bundle_rewrites_pointers_transitively_and_refuses_unknown_refs() -> None:
    known = {
        "https://x.example/a.json": ("a", {"$id": "https://x.example/a.json", "$defs": {"n": {"type": "integer"}},
                                           "properties": {"n": {"$ref": "#/$defs/n"}, "b": {"$ref": "b.json"}}}),
        "https://x.example/b.json": ("b", {"$id": "https://x.example/b.json", "type": "object",
                                           "properties": {"a": {"$ref": "a.json#/$defs/n"},
                                                          "self": {"$ref": "#"}}}),
    }
    root = {"$id": "https://x.example/root.json", "$defs": {"a": {"type": "string"}},
            "properties": {"x": {"$ref": "a.json"}, "y": {"$ref": "#/$defs/a"}, "const": {"const": {"$ref": "keep"}}}}
    out = bundle(root, known=known)
    assert out["properties"]["y"] == {"$ref": "#/$defs/a"}  # a definition of its own keeps its name
    assert out["properties"]["x"] == {"$ref": "#/$defs/a_"}
    assert out["properties"]["const"] == {"const": {"$ref": "keep"}}  # data is not rewritten
    assert out["$defs"]["a_"]["properties"] == {"n": {"$ref": "#/$defs/a_/$defs/n"}, "b": {"$ref": "#/$defs/b"}}
    assert out["$defs"]["b"]["properties"] == {"a": {"$ref": "#/$defs/a_/$defs/n"}, "self": {"$ref": "#/$defs/b"}}
    assert "$id" not in out["$defs"]["b"] and root["properties"]["x"] == {"$ref": "a.json"}  # input untouched
    v = offline_validator(out)
    assert v.is_valid({"x": {"n": 1, "b": {"a": 2}}, "y": "s"})
    assert not v.is_valid({"x": {"b": {"a": "two"}}})
    with pytest.raises(KeyError, match=r"nowhere\.example"):
        bundle({"properties": {"x": {"$ref": "https://nowhere.example/s.json"}}}, known=known)


def test_kling_schema_lists_names_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    from kling_core.cli import main

    with pytest.raises(SystemExit) as info:
        main(["schema"])
    assert info.value.code == 0
    assert capsys.readouterr().out.split() == schema_names()
    with pytest.raises(SystemExit) as info:
        main(["schema", "job-status"])
    assert info.value.code == 0
    assert json.loads(capsys.readouterr().out) == printed("job-status")
