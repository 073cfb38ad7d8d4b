"""JSON Schema (2020-12 subset) → hypothesis strategy of valid instances.

Covers what hand-written host schemas use: ``type`` (one or a list), ``enum``, ``const``,
``properties``/``required``/``additionalProperties``, ``items``/``prefixItems``, length and
range bounds, ``pattern``, ``format: uri``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``
(``#/$defs/...``). Every drawn instance is re-checked with ``jsonschema`` so a keyword this
generator does not model (``if``/``then``, ``not``) filters instead of producing invalid data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)

_MAX_ITEMS = 4
_URLS = st.builds(
    lambda host, path: f"https://{host}.example.com/{path}",
    st.sampled_from(["cdn", "media", "files", "v3"]),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9_-]{1,8}){0,2}\.mp4", fullmatch=True),
)


def arbitrary_json(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON document (for "a parser never crashes on junk" checks)."""
    return st.recursive(
        JSON_SCALARS,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
        max_leaves=max_leaves,
    )


class _Builder:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    def _string(self, s: Mapping[str, Any]) -> st.SearchStrategy[str]:
        return _string_strategy(s)

    def build(self, schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
        if schema is True or schema == {}:
            return arbitrary_json(8) if depth < 3 else JSON_SCALARS
        if schema is False:
            return st.nothing()
        assert isinstance(schema, Mapping)
        if "$ref" in schema:
            merged = {**self.resolve(schema["$ref"]), **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.build(merged, depth + 1)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"]))
        if "allOf" in schema:
            merged = dict(schema)
            for sub in merged.pop("allOf"):
                sub = self.resolve(sub["$ref"]) if isinstance(sub, Mapping) and "$ref" in sub else sub
                for k, v in (sub or {}).items():
                    if k == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **v}
                    elif k == "required":
                        merged["required"] = [*merged.get("required", []), *v]
                    elif k not in merged:
                        merged[k] = v
            return self.build(merged, depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                base = {k: v for k, v in schema.items() if k != key}
                return st.one_of([self.build({**base, **sub} if isinstance(sub, Mapping) else sub, depth + 1) for sub in schema[key]])
        types = schema.get("type")
        if types is None:
            types = _infer_type(schema)
        if isinstance(types, list):
            return st.one_of([self.build({**schema, "type": t}, depth) for t in types])
        return self._typed(types, schema, depth)

    def _typed(self, tp: str, s: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        if tp == "null":
            return st.none()
        if tp == "boolean":
            return st.booleans()
        if tp in ("integer", "number"):
            lo = s.get("minimum")
            hi = s.get("maximum")
            if "exclusiveMinimum" in s:
                lo = s["exclusiveMinimum"] + (1 if tp == "integer" else 1e-9)
            if "exclusiveMaximum" in s:
                hi = s["exclusiveMaximum"] - (1 if tp == "integer" else 1e-9)
            if tp == "integer":
                return st.integers(min_value=None if lo is None else int(lo), max_value=None if hi is None else int(hi))
            ints = st.integers(min_value=None if lo is None else int(-(-lo // 1)), max_value=None if hi is None else int(hi // 1))
            return ints | st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)
        if tp == "string":
            return self._string(s)
        if tp == "array":
            lo = int(s.get("minItems", 0))
            hi = int(s.get("maxItems", max(lo, _MAX_ITEMS) if depth < 4 else lo))
            prefix = [self.build(p, depth + 1) for p in s.get("prefixItems", [])]
            items = s.get("items", True)
            rest = self.build(items, depth + 1) if items is not False else st.nothing()
            if prefix:
                n_extra = st.integers(0, max(0, hi - len(prefix))) if items is not False else st.just(0)
                return st.tuples(st.tuples(*prefix), n_extra.flatmap(lambda n: st.lists(rest, min_size=n, max_size=n))).map(
                    lambda t: [*t[0], *t[1]]
                )
            return st.lists(rest, min_size=lo, max_size=max(lo, hi))
        if tp == "object":
            props: Mapping[str, Any] = s.get("properties", {})
            required = [k for k in s.get("required", []) if k in props or s.get("additionalProperties", True) is not False]
            optional = [k for k in props if k not in required]
            req = {k: self.build(props.get(k, True), depth + 1) for k in required}
            opt = {k: self.build(props[k], depth + 1) for k in optional}
            strat_obj: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(req, optional=opt)
            extra = s.get("additionalProperties", True)
            if extra is not False and depth < 3:
                extra_strat = self.build(extra, depth + 2)
                keys = st.text(min_size=1, max_size=8).filter(lambda k: k not in props)
                strat_obj = st.tuples(strat_obj, st.dictionaries(keys, extra_strat, max_size=2)).map(
                    lambda t: {**t[1], **t[0]}
                )
            return strat_obj
        raise ValueError(f"unsupported schema type {tp!r}")


def _string_strategy(s: Mapping[str, Any]) -> st.SearchStrategy[str]:
    min_len = int(s.get("minLength", 0))
    max_len: int | None = s.get("maxLength")
    strat: st.SearchStrategy[str]
    if "pattern" in s:
        strat = st.from_regex(s["pattern"])  # JSON Schema patterns search, they do not anchor
    elif s.get("format") in ("uri", "url", "iri"):
        strat = _URLS
    elif s.get("format") == "date-time":
        strat = st.datetimes().map(lambda d: d.isoformat() + "Z")
    else:
        top = min(max_len, min_len + 30) if max_len is not None else min_len + 30
        strat = st.text(min_size=min_len, max_size=top)

    def fits(v: str) -> bool:
        return len(v) >= min_len and (max_len is None or len(v) <= max_len)

    return strat.filter(fits)


def _infer_type(schema: Mapping[str, Any]) -> str | list[str]:
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if {"minLength", "maxLength", "pattern", "format"} & set(schema):
        return "string"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(schema):
        return "number"
    return ["null", "boolean", "integer", "string", "object", "array"]


def from_schema(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy of instances valid against ``schema`` (re-checked with jsonschema)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return _Builder(schema).build(schema).filter(validator.is_valid)
