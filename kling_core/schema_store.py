"""Access to the published JSON Schemas (shipped in the wheel under ``kling_core/schemas``).

The files refer to one another by relative ``$ref`` (``job-status`` to ``edit-result``), each
under an ``$id`` on a domain that is an identifier, not a server. What ``kling schema`` prints
is :func:`bundled_schema`: every schema referred to is inlined under ``$defs`` and every
``$ref`` rewritten to a local ``#/...`` pointer, so any validator resolves it with no network
and no other file.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import urldefrag, urljoin

CORE = ("edit-request", "job-status", "edit-result", "config", "cassette", "batch-line")


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


def schema_names() -> list[str]:
    """Every shipped schema's name, as ``kling schema NAME`` takes it."""
    folder = schema_root() / "providers"
    extra = sorted(
        f"providers/{p.name.removesuffix('.schema.json')}" for p in folder.iterdir() if p.name.endswith(".schema.json")
    ) if folder.is_dir() else []
    return [*CORE, *extra]


def _shipped() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each shipped schema that has an ``$id``: its short name (file name without suffix) and document."""
    root = schema_root()
    for folder in (root, root / "providers"):
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.name.endswith(".schema.json"):
                doc = json.loads(item.read_text())
                if "$id" in doc:
                    yield item.name.removesuffix(".schema.json"), doc


@cache
def _by_id() -> dict[str, tuple[str, dict[str, Any]]]:
    """Each shipped schema by its ``$id``: its short name (file name without suffix) and document."""
    return {doc["$id"]: (name, doc) for name, doc in _shipped()}


def bundle(schema: dict[str, Any], *, known: dict[str, tuple[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """``schema`` made self-contained: each schema a ``$ref`` reaches (transitively) is copied
    under ``$defs/<name>`` and every ``$ref`` becomes a local JSON pointer (``#/...``).

    ``known`` maps an ``$id`` to ``(name, document)``; by default the shipped schemas. A ``$ref``
    to anything else raises KeyError, naming it: a bundle never points outside itself.
    """
    by_id = _by_id() if known is None else known
    out = copy.deepcopy(schema)
    base = urldefrag(str(out.get("$id", ""))).url
    defs: dict[str, Any] = out.setdefault("$defs", {})
    prefixes: dict[str, str] = {base: ""}  # absolute URI -> JSON pointer of its copy in the bundle

    def embed(uri: str) -> str:
        if uri not in prefixes:
            if uri not in by_id:
                raise KeyError(f"$ref to {uri!r}: not a shipped schema, so it cannot be bundled")
            name, doc = by_id[uri]
            key = name
            while key in defs:  # never overwrite a definition of the schema itself
                key += "_"
            prefixes[uri] = f"/$defs/{key}"
            sub = copy.deepcopy(doc)
            sub.pop("$schema", None)
            sub.pop("$id", None)
            sub["$comment"] = f"bundled from {uri}"
            defs[key] = sub
            rewrite(sub, uri)
        return prefixes[uri]

    def target(ref: str, base_uri: str) -> str:
        absolute, fragment = urldefrag(urljoin(base_uri, ref))
        if fragment and not fragment.startswith("/"):
            raise KeyError(f"$ref {ref!r}: only JSON-pointer fragments can be bundled")
        return f"#{prefixes[absolute] if absolute in prefixes else embed(absolute)}{fragment}"

    def rewrite(node: Any, base_uri: str) -> None:
        if isinstance(node, list):
            for item in node:
                rewrite(item, base_uri)
            return
        if not isinstance(node, dict):
            return
        for key, value in list(node.items()):
            if key == "$ref" and isinstance(value, str):
                node[key] = target(value, base_uri)
            elif key in ("const", "enum", "default", "examples"):
                continue  # data, not schemas
            elif key in ("properties", "patternProperties", "$defs", "dependentSchemas") and isinstance(value, dict):
                for sub in list(value.values()):  # keys here are names, whatever they spell
                    rewrite(sub, base_uri)
            else:
                rewrite(value, base_uri)

    rewrite(out, base)  # copies added meanwhile are rewritten once more: a no-op on local pointers
    if not defs:
        del out["$defs"]
    return out


@cache
def bundled_schema(name: str) -> dict[str, Any]:
    """A shipped schema, self-contained (see :func:`bundle`): what ``kling schema NAME`` prints."""
    return bundle(load_schema(name))


@cache
def registry() -> Any:
    """A ``referencing`` registry holding every shipped schema, for cross-file ``$ref``s."""
    from referencing import Registry, Resource

    return Registry().with_resources([(doc["$id"], Resource.from_contents(doc)) for _name, doc in _shipped()])


@cache
def validator(name: str) -> Any:
    """A Draft 2020-12 validator for a shipped schema (needs the ``test`` extra: jsonschema)."""
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry())
