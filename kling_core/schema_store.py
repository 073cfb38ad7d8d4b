"""Access to the published JSON Schemas (shipped in the wheel under ``kling_core/schemas``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

CORE = ("edit-request", "job-status", "edit-result", "config", "cassette")


def schema_root() -> Traversable:
    return resources.files("kling_core") / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema by name: ``edit-request`` or ``providers/fal-o1-edit-request`` (no suffix)."""
    rel = name if name.endswith(".json") else f"{name}.schema.json"
    parts = rel.split("/")
    if ".." in parts:
        raise KeyError(name)
    target = schema_root().joinpath(*parts)
    if not target.is_file():
        raise KeyError(name)
    doc: dict[str, Any] = json.loads(target.read_text())
    return doc


@cache
def registry() -> Any:
    """A ``referencing`` registry holding every shipped schema, for cross-file ``$ref``s."""
    from referencing import Registry, Resource

    resources_: list[tuple[str, Any]] = []
    root = schema_root()
    for folder in (root, root / "providers"):
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.name.endswith(".schema.json"):
                doc = json.loads(item.read_text())
                if "$id" in doc:
                    resources_.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources_)


@cache
def validator(name: str) -> Any:
    """A Draft 2020-12 validator for a shipped schema (needs the ``test`` extra: jsonschema)."""
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry())
