"""Cassettes: one recorded scenario per JSON file, validated against ``cassette.schema.json``.

Loading is strict: the schema first (every problem, each with its JSON path), then what a
schema cannot say (the request is a valid EditRequest, ``expect.error.type`` names a real
error class, a status step has a handle to work on). Errors name the file and the field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from attrs import field

from kling_core import errors
from kling_core.contract.models import EditRequest
from kling_core.errors import Problem, ValidationError
from kling_core.serialization import structure

SECRET = "<SECRET>"
OPS = ("submit", "status", "cancel", "resume", "dry_run")
_NEEDS_HANDLE = ("status", "cancel")
_MAKES_HANDLE = ("submit", "resume")


@attrs.frozen
class Provenance:
    source: str  # documented | inferred | recorded
    url: str | None = None
    note: str | None = None
    date: str | None = None


@attrs.frozen
class RecordedRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(factory=dict)
    has_json: bool = False
    json: Any = None
    match_json: str = "exact"  # exact | subset | ignore
    match_query: str = "exact"  # exact | ignore


@attrs.frozen
class RecordedResponse:
    status: int = 0
    headers: Mapping[str, str] = field(factory=dict)
    json: Any = None
    text: str | None = None
    has_json: bool = False
    raise_: str | None = None  # transport failure instead of a response


@attrs.frozen
class Interaction:
    provenance: Provenance
    request: RecordedRequest
    response: RecordedResponse


@attrs.frozen
class Step:
    op: str
    interactions: tuple[Interaction, ...]
    expect: Mapping[str, Any]
    args: Mapping[str, Any] = field(factory=dict)

    @property
    def expect_kind(self) -> str:
        return next(iter(self.expect))


@attrs.frozen
class Cassette:
    path: Path
    provider: str
    scenario: str
    description: str
    request: EditRequest
    request_doc: Mapping[str, Any]
    options: Mapping[str, Any]
    base_url: str | None
    steps: tuple[Step, ...]
    raw: Mapping[str, Any] = field(repr=False, eq=False)
    covers: tuple[str, ...] = ()

    @property
    def interactions(self) -> list[Interaction]:
        return [i for s in self.steps for i in s.interactions]

    def outcome(self) -> str:
        """What the scenario ends in: ``succeeded``/``failed``/... or an error class name."""
        last = self.steps[-1]
        if last.expect_kind == "error":
            return str(last.expect["error"]["type"])
        if last.expect_kind == "status":
            return str(last.expect["status"].get("state", "status"))
        if last.expect_kind == "cancelled":
            return "cancel"
        return last.expect_kind


@functools.cache
def cassette_schema() -> Mapping[str, Any]:
    text = (resources.files("kling_core") / "schemas" / "cassette.schema.json").read_text("utf-8")
    doc: Mapping[str, Any] = json.loads(text)
    return doc


def _json_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_problems(doc: object) -> list[Problem]:
    """Every schema violation of a cassette document, each with its path."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(cassette_schema())
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        # oneOf failures are clearer through their closest branch
        best = jsonschema.exceptions.best_match([err]) if err.context else err
        problems.append(Problem(_json_path(best.absolute_path) or "(document)", best.message))
    return problems


def _request(doc: Mapping[str, Any]) -> RecordedRequest:
    match = doc.get("match", {})
    return RecordedRequest(
        method=doc["method"],
        url=doc["url"],
        headers={k.lower(): v for k, v in doc.get("headers", {}).items()},
        has_json="json" in doc,
        json=doc.get("json"),
        match_json=match.get("json", "exact"),
        match_query=match.get("query", "exact"),
    )


def _response(doc: Mapping[str, Any]) -> RecordedResponse:
    if "raise" in doc:
        return RecordedResponse(raise_=doc["raise"])
    return RecordedResponse(
        status=doc["status"],
        headers=dict(doc.get("headers", {})),
        json=doc.get("json"),
        text=doc.get("text"),
        has_json="json" in doc,
    )


def cassette_error(problems: list[Problem], path: Path) -> ValidationError:
    """Every problem of one cassette; the file is named even when there is only one."""
    if len(problems) == 1:
        p = problems[0]
        return ValidationError([Problem(f"{path}: {p.path}" if p.path else str(path), p.message)])
    return ValidationError(problems, subject=f"cassette {path}")


def parse_cassette(doc: object, path: Path) -> Cassette:
    """Validate a cassette document and build its model; ValidationError names ``path``."""
    problems = schema_problems(doc)
    if problems:
        raise cassette_error(problems, path)
    assert isinstance(doc, Mapping)
    request: EditRequest | None = None
    try:
        request = structure(doc["request"], EditRequest)
    except ValidationError as exc:
        problems += [Problem(f"request.{p.path}" if p.path else "request", p.message) for p in exc.problems]

    steps: list[Step] = []
    has_handle = False
    for i, s in enumerate(doc["steps"]):
        where = f"steps[{i}]"
        if s["op"] in _NEEDS_HANDLE and not has_handle:
            problems.append(Problem(f"{where}.op", f"{s['op']!r} needs an earlier submit or resume step"))
        if "error" in s["expect"]:
            name = s["expect"]["error"]["type"]
            cls = getattr(errors, name, None)
            if not (isinstance(cls, type) and issubclass(cls, errors.KlingError)):
                problems.append(Problem(f"{where}.expect.error.type", f"{name!r} is not an error class in kling_core.errors"))
        elif s["op"] in _MAKES_HANDLE:
            has_handle = True
        steps.append(
            Step(
                op=s["op"],
                interactions=tuple(
                    Interaction(
                        provenance=Provenance(**it["provenance"]),
                        request=_request(it["request"]),
                        response=_response(it["response"]),
                    )
                    for it in s["interactions"]
                ),
                expect=s["expect"],
                args=s.get("args", {}),
            )
        )
    # "covers": cases the scenario shows beyond what its last step says (the schema lists them).
    # completed_with_error: the host reports the job done but its answer carries an error, and
    # the plugin must report a failed job; only a scenario ending in one can show that.
    covers = tuple(doc.get("covers", ()))
    last = steps[-1] if steps else None
    if "completed_with_error" in covers and not (
        last is not None and last.expect_kind == "status" and last.expect["status"].get("state") == "failed"
    ):
        problems.append(Problem("covers", "'completed_with_error' needs a last step expecting a failed status"))
    if problems or request is None:
        raise cassette_error(problems, path)
    settings = doc.get("settings", {})
    return Cassette(
        path=path,
        provider=doc["provider"],
        scenario=doc["scenario"],
        description=doc.get("description", ""),
        request=request,
        request_doc=doc["request"],
        options=settings.get("options", {}),
        base_url=settings.get("base_url"),
        steps=tuple(steps),
        raw=doc,
        covers=covers,
    )


def load_cassette(path: str | Path) -> Cassette:
    """Read, validate and parse one cassette file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise cassette_error([Problem("", f"cannot read: {exc.strerror}")], path) from None
    except json.JSONDecodeError as exc:
        raise cassette_error(
            [Problem("", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")], path
        ) from None
    return parse_cassette(doc, path)


def cassette_files(directory: str | Path | None) -> list[Path]:
    """The cassette files of a folder, sorted; none if the folder does not exist."""
    if directory is None:
        return []
    d = Path(directory)
    return sorted(d.glob("*.json")) if d.is_dir() else []


def load_cassettes(directory: str | Path | None) -> list[Cassette]:
    return [load_cassette(p) for p in cassette_files(directory)]
