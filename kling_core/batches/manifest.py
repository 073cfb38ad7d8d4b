"""Reading a batch manifest: JSONL or CSV, one edit per line, with ``kling edit``'s fields.

This module only reads and shape-checks the lines (field names, types, list cells); whether a
request is valid on its provider is :mod:`.plan`'s business. Every problem of every line is
collected, each named ``line N, FIELD`` (N: the line's number in the file, 1-based), so a bad
manifest is refused whole.

JSONL: one JSON object per line; blank lines and lines starting with ``#`` are skipped; a key
given twice in one object is a problem. ``images`` is a list of strings,
``elements`` a list of ``{"frontal_image", "reference_images"}`` objects (or ``kling edit
--element`` specs), ``options`` an object.

CSV: a header row naming the fields (an unknown name is reported once, on line 1), then one
edit per row; an empty cell leaves the field unset. List cells separate their items with ``|``: ``images`` = ``a.png|b.png``, ``elements`` =
``front.png:ref1.png,ref2.png|front2.png:ref3.png`` (``kling edit --element`` specs), ``options`` =
``KEY=VALUE|KEY=VALUE`` (values as ``kling edit -O``: JSON scalars, else text).
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from kling_core.errors import Problem, ValidationError

Format = Literal["jsonl", "csv"]
FORMATS: tuple[str, ...] = ("jsonl", "csv")
# The fields of a line: `kling edit`'s, by their request names.
TEXT_FIELDS = ("video", "prompt", "quality", "model", "edit_mode", "aspect_ratio", "provider", "output",
               "client_key", "webhook_url")
LIST_FIELDS = ("images", "elements")
FIELDS: tuple[str, ...] = (*TEXT_FIELDS, *LIST_FIELDS, "keep_audio", "duration", "options")
REQUIRED = ("video", "prompt")
CSV_SEPARATOR = "|"
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")
# A manifest is read whole before anything runs; a line this long is not an edit.
MAX_LINE_BYTES = 1024 * 1024


@attrs.frozen
class ManifestLine:
    """One line's fields, shape-checked (unset fields left out)."""

    number: int
    fields: Mapping[str, Any]


def problem(number: int, field: str, message: str) -> Problem:
    return Problem(f"line {number}, {field}" if field else f"line {number}", message)


def detect_format(path: Path, given: str | None) -> Format:
    """``--format`` when given; else by suffix (``.csv``; ``.jsonl``/``.ndjson``/``.json``); else by content
    (after a BOM, blank lines and ``#`` comments, a first ``{`` is JSONL)."""
    if given is not None:
        if given not in FORMATS:
            raise ValidationError.single("format", f"{given!r} is not one of {', '.join(FORMATS)}", subject="manifest")
        return "csv" if given == "csv" else "jsonl"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    # The first line that is not blank nor a comment decides (a BOM before it is no content).
    commented = False
    with path.open("rb") as fh:
        for i, raw in enumerate(fh):
            head = (raw.removeprefix(codecs.BOM_UTF8) if i == 0 else raw).strip()
            if head.startswith(b"#"):
                commented = True  # only JSONL manifests have comments
            elif head:
                return "jsonl" if head.startswith(b"{") else "csv"
    return "jsonl" if commented else "csv"


def read_manifest(path: str | Path, *, fmt: str | None = None) -> tuple[list[ManifestLine], list[Problem]]:
    """The manifest's lines and every problem with their fields' shapes.

    A line with problems is still returned (without its bad fields) when it has a video and a
    prompt, so the request checks can report its other problems too: the caller refuses the
    batch if any problem was found. ValidationError at once only for an unreadable file.
    """
    path = Path(path)
    try:
        kind = detect_format(path, fmt)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValidationError.single("manifest", f"{path}: no such file", subject="manifest") from None
    except IsADirectoryError:
        raise ValidationError.single("manifest", f"{path}: is a directory", subject="manifest") from None
    except OSError as exc:
        raise ValidationError.single("manifest", f"{path}: {exc.strerror or exc}", subject="manifest") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError.single("manifest", f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                                     subject="manifest") from None
    rows = _jsonl_rows(text) if kind == "jsonl" else _csv_rows(text)
    lines: list[ManifestLine] = []
    problems: list[Problem] = []
    for number, row in rows:
        if isinstance(row, Problem):
            problems.append(row)
            continue
        fields, found = check_fields(number, row, csv_cells=kind == "csv")
        problems += found
        if all(key in fields for key in REQUIRED):
            lines.append(ManifestLine(number, fields))
    if not lines and not problems:
        raise ValidationError.single("manifest", f"{path}: no edits in it", subject="manifest")
    return lines, problems


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    # Lines end at "\n" only: str.splitlines would also split at U+2028, U+0085 or a form feed,
    # which JSON allows inside a string, and so break a line and shift every number after it.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):  # blank lines and comments
            continue
        if len(line) > MAX_LINE_BYTES:
            yield number, problem(number, "", f"longer than {MAX_LINE_BYTES} characters")
            continue
        twice: list[str] = []
        try:
            doc = json.loads(line, object_pairs_hook=functools.partial(_object, twice=twice))
        except ValueError as exc:
            yield number, problem(number, "", f"not JSON ({exc})")
            continue
        for key in dict.fromkeys(twice):
            yield number, problem(number, key, "given twice")
        if not isinstance(doc, dict):
            yield number, problem(number, "", f"must be a JSON object, not {type(doc).__name__}")
            continue
        yield number, doc


def _object(pairs: list[tuple[str, Any]], twice: list[str]) -> dict[str, Any]:
    """A JSON object, each key given more than once noted in ``twice`` (json keeps the last silently)."""
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            twice.append(key)
        doc[key] = value
    return doc


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, problem(1, "", f"not CSV ({exc})")
        return
    names = [h.strip() for h in header]
    for i, name in enumerate(names):
        if not name:
            yield 1, problem(1, f"column {i + 1}", "has no name in the header")
        elif names.index(name) != i:
            yield 1, problem(1, name, "is named twice in the header")
        elif name not in FIELDS:
            # Said once here, not on every row; the column is left out of the rows.
            yield 1, problem(1, name, f"unknown field in the header (fields: {', '.join(FIELDS)})")
    names = [name if name in FIELDS else "" for name in names]
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, problem(start, "", f"not CSV ({exc})")
            return
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names):
            yield start, problem(start, "", f"{len(cells)} cells, but the header names {len(names)} columns")
            continue
        yield start, {name: cell for name, cell in zip(names, cells, strict=False) if name and cell.strip() != ""}


def check_fields(number: int, row: Mapping[str, Any], *, csv_cells: bool) -> tuple[dict[str, Any], list[Problem]]:
    """One line's fields in the shapes the request builder takes, and every problem with them."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(problem(number, field, message))

    for key in row:
        if key not in FIELDS:
            bad(str(key), f"unknown field (fields: {', '.join(FIELDS)})")
    for key in REQUIRED:
        if row.get(key) in (None, ""):
            bad(key, "is required")
    for key in TEXT_FIELDS:
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            bad(key, f"must be a string, not {type(value).__name__}")
        elif not value.strip():
            if key not in REQUIRED or value:  # "" is reported as required above
                bad(key, "is empty")
        else:
            out[key] = value.strip() if key not in ("prompt",) else value
    if "keep_audio" in row:
        out_value = _boolean(row["keep_audio"], csv_cells)
        if out_value is None:
            bad("keep_audio", f"must be true or false, not {row['keep_audio']!r}")
        else:
            out["keep_audio"] = out_value
    if "duration" in row:
        duration = _integer(row["duration"], csv_cells)
        if duration is None:
            bad("duration", f"must be a whole number of seconds, not {row['duration']!r}")
        else:
            out["duration"] = duration
    if "images" in row:
        images = _text_list(row["images"], csv_cells)
        if images is None:
            bad("images", "must be a list of strings (CSV: items separated by '|')")
        elif any(not image.strip() for image in images):
            for i, image in enumerate(images):
                if not image.strip():
                    bad(f"images[{i}]", "is empty")
        else:
            out["images"] = images
    if "elements" in row:
        out["elements"] = _elements(row["elements"], csv_cells, lambda f, m: bad(f, m))
    if "options" in row:
        options = _options(row["options"], csv_cells, lambda f, m: bad(f, m))
        if options is not None:
            out["options"] = options
    return out, problems


def _boolean(value: Any, csv_cells: bool) -> bool | None:
    if isinstance(value, bool):
        return value
    if csv_cells and isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


def _integer(value: Any, csv_cells: bool) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if csv_cells and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _text_list(value: Any, csv_cells: bool) -> list[str] | None:
    if csv_cells and isinstance(value, str):
        return [item.strip() for item in value.split(CSV_SEPARATOR) if item.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _elements(value: Any, csv_cells: bool, bad: Any) -> list[dict[str, Any]]:
    # `kling edit --element` specs, parsed by the edit command's own parser.
    from kling_core.cli.job_cmd import parse_element

    specs: list[Any]
    if csv_cells and isinstance(value, str):
        specs = [s.strip() for s in value.split(CSV_SEPARATOR) if s.strip()]
    elif isinstance(value, list):
        specs = value
    else:
        bad("elements", "must be a list of elements (CSV: FRONTAL:REF[,REF...] items separated by '|')")
        return []
    out: list[dict[str, Any]] = []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            try:
                out.append(parse_element(spec, i))
            except ValidationError as exc:
                for p in exc.problems:
                    bad(p.path, p.message)
        elif isinstance(spec, dict):
            out.append(spec)  # the request builder checks its fields
        else:
            bad(f"elements[{i}]", f"must be an object or a FRONTAL:REF[,REF...] string, not {type(spec).__name__}")
    return out


def _options(value: Any, csv_cells: bool, bad: Any) -> dict[str, Any] | None:
    from kling_core.cli.job_cmd import parse_option

    if isinstance(value, dict):
        return dict(value)
    if csv_cells and isinstance(value, str):
        out: dict[str, Any] = {}
        for raw in (s.strip() for s in value.split(CSV_SEPARATOR)):
            if not raw:
                continue
            try:
                key, parsed = parse_option(raw)
            except ValidationError as exc:
                for p in exc.problems:
                    bad(p.path, p.message)
                continue
            out[key] = parsed
        return out
    bad("options", f"must be an object (CSV: KEY=VALUE items separated by '|'), not {type(value).__name__}")
    return None
