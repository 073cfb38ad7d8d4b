"""The kit's hypothesis strategies: schema instances are valid, request strategies stay in bounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from kling_core.contract.checks import check_against
from kling_core.contract.models import EditRequest
from kling_core.plugins import PluginHost
from kling_core.testing.schema_strategy import from_schema
from kling_core.testing.strategies import servable_requests, unservable_requests

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = sorted([*ROOT.glob("schemas/providers/*.json"), *ROOT.glob("examples/*/*/schemas/*.json")])
BUDGET = settings(
    max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
PROVIDERS = PluginHost().providers


def test_there_are_schemas_to_check() -> None:
    assert len(SCHEMAS) >= 3


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_instances_are_valid(path: Path) -> None:
    schema = json.loads(path.read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)

    @BUDGET
    @given(doc=from_schema(schema))
    def check(doc: Any) -> None:
        assert validator.is_valid(doc)
        json.dumps(doc)  # plain JSON, nothing exotic

    check()


def test_generator_covers_refs_enums_bounds_and_prefix_items() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "required": ["a", "b", "c", "d"], "additionalProperties": False,
        "properties": {
            "a": {"$ref": "#/$defs/state"}, "b": {"type": "integer", "minimum": 3, "maximum": 5},
            "c": {"type": "array", "prefixItems": [{"const": "x"}], "items": False},
            "d": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 2, "maxLength": 3}]},
        },
        "$defs": {"state": {"enum": ["IN_QUEUE", "COMPLETED"]}},
    }
    seen: set[Any] = set()

    @BUDGET
    @given(doc=from_schema(schema))
    def check(doc: Any) -> None:
        assert doc["a"] in ("IN_QUEUE", "COMPLETED") and 3 <= doc["b"] <= 5 and doc["c"] == ["x"]
        assert doc["d"] is None or 2 <= len(doc["d"]) <= 3
        seen.add(doc["a"])

    check()
    assert seen == {"IN_QUEUE", "COMPLETED"}


@pytest.mark.parametrize("name", sorted({c.name for c in PROVIDERS.values()}))
def test_request_strategies_respect_capabilities(name: str) -> None:
    caps = PROVIDERS[name].capabilities

    @BUDGET
    @given(req=servable_requests(caps), case=unservable_requests(caps))
    def check(req: EditRequest, case: tuple[str, EditRequest]) -> None:
        assert check_against(req, caps, name) == []
        field, bad = case
        from kling_core.contract.checks import check_references

        problems = check_against(bad, caps, name) + check_references(bad)
        assert problems, f"{field} pushed out of bounds but nothing refuses it"

    check()


def test_every_mutation_is_refused_by_the_core_checks() -> None:
    """Each way the strategy pushes a request out of bounds is one the core checks refuse."""
    from kling_core.contract.checks import check_references
    from kling_core.testing.strategies import _mutations

    caps = PROVIDERS["example"].capabilities if "example" in PROVIDERS else PROVIDERS["mock"].capabilities
    names = {name for name, _ in _mutations(caps)}
    assert {"images", "prompt", "aspect_ratio", "duration", "edit_mode"} <= names
    for model in caps.models:
        base = EditRequest(prompt="Make it snow", video="https://media.example.com/v.mp4", model=model.model)
        for name, mutate in _mutations(caps):
            bad = mutate(base, model)
            if bad == base:
                continue
            problems = check_against(bad, caps, "example") + check_references(bad)
            assert any(p.path.split(".")[0].split("[")[0] == name for p in problems), (name, problems)
