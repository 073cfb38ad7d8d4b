"""One cattrs converter for every wire document: requests, statuses, results, config.

Structuring is strict (JSON types are not coerced: ``5`` is not a string) and collects every
problem with its field path, e.g. ``elements[1].reference_images: 4 given, at most 3``.
The attrs validators on the models are the single source of the per-field rules; this module
runs them field by field so all failures are reported, not just the first.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
import cattrs.gen

from kling_core.contract.status import STATUS_TYPES, JobStatus
from kling_core.errors import Problem, ValidationError

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)


class _Problems(Exception):
    """Internal: carries problems up through nested structuring."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


_SCALARS: dict[Any, tuple[str, Callable[[object], bool]]] = {
    str: ("a string", lambda v: isinstance(v, str)),
    bool: ("a boolean", lambda v: isinstance(v, bool)),
    # JSON Schema counts 3.0 as an integer; so do we (it is structured as 3).
    int: ("an integer", lambda v: (isinstance(v, int) and not isinstance(v, bool))
          or (isinstance(v, float) and v.is_integer())),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
}


def _structure_value(value: object, tp: Any, path: str) -> Any:
    """Structure ``value`` as ``tp``; raise _Problems with paths relative to the document."""
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            shown = ", ".join(str(c) for c in choices)
            raise _Problems([Problem(path, f"{value!r} is not one of {shown}")])
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _Problems([Problem(path, "must not be null")])
        non_null = [a for a in args if a is not type(None)]
        if len(non_null) == 1:
            return _structure_value(value, non_null[0], path)
        if all(a in _SCALARS for a in non_null):
            for a in non_null:
                if _SCALARS[a][1](value):
                    return value
            raise _Problems([Problem(path, f"expected a scalar, got {json_type(value)}")])
        if set(non_null) == set(STATUS_TYPES):
            return _structure_status(value, path)
        raise TypeError(f"unsupported union {tp!r}")
    if tp in _SCALARS:
        name, ok = _SCALARS[tp]
        if not ok(value):
            raise _Problems([Problem(path, f"expected {name}, got {json_type(value)}")])
        if tp is float:
            return float(value)  # type: ignore[arg-type]
        return int(value) if tp is int else value  # type: ignore[call-overload]
    if origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_tp = args[0]
        elif origin is tuple and args:
            if not isinstance(value, (list, tuple)) or len(value) != len(args):
                raise _Problems([Problem(path, f"expected an array of {len(args)} items")])
            return tuple(_structure_value(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        else:
            item_tp = args[0] if args else Any
        if not isinstance(value, (list, tuple)):
            raise _Problems([Problem(path, f"expected an array, got {json_type(value)}")])
        items, problems = [], []
        for i, item in enumerate(value):
            try:
                items.append(_structure_value(item, item_tp, f"{path}[{i}]"))
            except _Problems as e:
                problems += e.problems
        if problems:
            raise _Problems(problems)
        return tuple(items) if origin is not list else items
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping):
        args = get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        if not isinstance(value, Mapping):
            raise _Problems([Problem(path, f"expected an object, got {json_type(value)}")])
        out, problems = {}, []
        for k, item in value.items():
            if not isinstance(k, str):
                problems.append(Problem(path, f"keys must be strings, got {k!r}"))
                continue
            try:
                out[k] = _structure_value(item, val_tp, _join(path, k))
            except _Problems as e:
                problems += e.problems
        if problems:
            raise _Problems(problems)
        return out
    if attrs.has(tp):
        return _structure_attrs(value, tp, path)
    raise TypeError(f"no structuring rule for {tp!r}")


def _structure_attrs(data: object, cls: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise _Problems([Problem(path, f"expected an object, got {json_type(data)}")])
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    init_fields = [f for f in fields if f.init]
    known = {f.name for f in fields}
    problems: list[Problem] = []
    for key in data:
        if key not in known:
            problems.append(Problem(_join(path, str(key)), "unknown field"))
    for f in fields:  # non-init fields are tags such as "state": they must match if given
        if not f.init and f.name in data and data[f.name] != f.default:
            problems.append(Problem(_join(path, f.name), f"must be {f.default!r}"))
    kwargs: dict[str, Any] = {}
    for f in init_fields:
        fpath = _join(path, f.name)
        if f.name not in data:
            if f.default is attrs.NOTHING:
                problems.append(Problem(fpath, "required field missing"))
            continue
        try:
            value = _structure_value(data[f.name], f.type, fpath)
        except _Problems as e:
            problems += e.problems
            continue
        if f.converter is not None:
            value = f.converter(value)
        if f.validator is not None:
            try:
                f.validator(None, f, value)
            except (ValueError, TypeError) as exc:
                problems.append(Problem(fpath, _validator_message(exc)))
                continue
        kwargs[f.name] = value
    if problems:
        raise _Problems(problems)
    return cls(**kwargs)


def _validator_message(exc: Exception) -> str:
    msg = str(exc.args[0]) if exc.args else str(exc)
    # attrs' own validators start with "'name' must ..."; the path already names the field.
    if msg.startswith("'") and "' must" in msg:
        msg = msg.split("' ", 1)[1]
    return msg


def _structure_status(value: object, path: str) -> JobStatus:
    if not isinstance(value, Mapping):
        raise _Problems([Problem(path, f"expected an object, got {json_type(value)}")])
    state = value.get("state")
    by_state = {cls.__attrs_attrs__.state.default: cls for cls in STATUS_TYPES}  # type: ignore[attr-defined]
    if not isinstance(state, str) or state not in by_state:
        raise _Problems([Problem(_join(path, "state"), f"{state!r} is not one of {', '.join(by_state)}")])
    return _structure_attrs(value, by_state[state], path)  # type: ignore[no-any-return]


def structure(data: object, cls: Any, *, subject: str | None = None) -> Any:
    """Structure a JSON-like document; raise ValidationError listing every problem."""
    try:
        return _structure_value(data, cls, "")
    except _Problems as e:
        name = subject or str(getattr(cls, "__name__", "document"))
        raise ValidationError(e.problems, subject=name) from None


def unstructure(obj: Any) -> Any:
    """The JSON-ready form of a model (tuples as lists, mappings as dicts)."""
    return converter.unstructure(obj)


def _tagged_unstructure(cls: Any) -> Callable[[Any], dict[str, Any]]:
    plain: Callable[[Any], dict[str, Any]] = cattrs.gen.make_dict_unstructure_fn(cls, converter)
    tag = cls.__attrs_attrs__.state.default

    def unstructure_status(obj: Any) -> dict[str, Any]:
        return {**plain(obj), "state": tag}

    return unstructure_status


def _register() -> None:
    # Route cattrs' structure() through the collecting structurer for our attrs classes, so
    # `converter.structure(doc, EditRequest)` behaves the same as `structure()` above.
    def is_ours(tp: Any) -> bool:
        return attrs.has(tp) and getattr(tp, "__module__", "").startswith("kling_")

    def hook(value: Any, tp: Any) -> Any:
        return structure(value, tp)

    converter.register_structure_hook_func(is_ours, hook)
    for status_cls in STATUS_TYPES:
        # The "state" tag is not an __init__ argument, so cattrs would leave it out.
        converter.register_unstructure_hook(status_cls, _tagged_unstructure(status_cls))
    converter.register_unstructure_hook(tuple, lambda t: [converter.unstructure(x) for x in t])
    converter.register_unstructure_hook_func(
        lambda tp: isinstance(tp, type) and issubclass(tp, Mapping),
        lambda m: {k: converter.unstructure(v) for k, v in m.items()},
    )


_register()
