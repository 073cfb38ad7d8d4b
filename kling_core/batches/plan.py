"""From manifest lines to a plan: each line's request checked on its provider, its output, its
client key, and what running it would do (submit, pick up its job, or skip it).

How a line is identified across runs (so a re-run resumes and never submits a line twice):
its client key is the line's explicit ``client_key``, else derived from what the line would
render and where it saves — the provider as written, the model and the request (local media by
the SHA-256 of their content, URLs as given, options included, the webhook left out; the same
identity ``kling edit`` derives its keys from) plus the absolute output path — salted per job
log: ``batch-<20 hex digits>``. Re-running the same manifest therefore finds each line's job;
moving lines around, adding lines or running it from another folder changes nothing; editing a
line's content (or its output) makes it a new job. Relative paths in a line (media and
``output``) are relative to the manifest's folder.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs

from kling_core.batches.manifest import ManifestLine, problem
from kling_core.client.aio import AsyncEditClient
from kling_core.client.fallback import client_key_for, provider_chain
from kling_core.client.pickup import same_request
from kling_core.contract.checks import is_url, local_path
from kling_core.contract.models import EditRequest
from kling_core.errors import KlingError, Problem, UnsupportedError, ValidationError
from kling_core.joblog import JobRecord, canonical
from kling_core.outputs import check_output, check_suffix, default_stem

Action = Literal["submit", "pickup", "skip"]
KEY_PREFIX = "batch-"


@attrs.frozen
class PlannedLine:
    """One checked line: its request (client key set), where it saves and what a run does with it."""

    number: int
    request: EditRequest
    provider: str  # as the line (or the batch default) names it: one name or a fallback list "a,b"
    primary: str  # the first provider of that list: checked against and used for its limit
    output: Path
    client_key: str
    action: Action
    # The job log's record of this line from an earlier run (state, job id, error), if any.
    prior_state: str | None = None
    prior_job_id: str | None = None
    prior_error: str | None = None


@attrs.frozen
class BatchPlan:
    lines: tuple[PlannedLine, ...]
    manifest: Path
    output_dir: Path

    def count(self, action: Action) -> int:
        return sum(1 for line in self.lines if line.action == action)


def default_output_dir(manifest: Path) -> Path:
    """``<manifest folder>/<manifest stem>-outputs``."""
    return manifest.parent / f"{manifest.stem}-outputs"


def line_key(salt: str, identity: str, output: Path) -> str:
    digest = hashlib.sha256(f"{salt}:batch:{identity}:{output}".encode()).hexdigest()[:20]
    return f"{KEY_PREFIX}{digest}"


def _rebase(ref: str, folder: Path) -> str:
    """A relative local path as seen from the manifest's folder; URLs and absolute paths unchanged."""
    if is_url(ref) or ref.lower().startswith("file://") or "://" in ref:
        return ref
    path = local_path(ref)
    if path is None or path.is_absolute():
        return ref
    return str(folder / path)


def _rebased_fields(fields: dict[str, Any], folder: Path) -> dict[str, Any]:
    out = dict(fields)
    out["video"] = _rebase(out["video"], folder)
    if "images" in out:
        out["images"] = [_rebase(i, folder) for i in out["images"]]
    if "elements" in out:
        rebased = []
        for el in out["elements"]:
            el = dict(el)
            if isinstance(el.get("frontal_image"), str):
                el["frontal_image"] = _rebase(el["frontal_image"], folder)
            refs = el.get("reference_images")
            if isinstance(refs, list):
                el["reference_images"] = [_rebase(r, folder) if isinstance(r, str) else r for r in refs]
            rebased.append(el)
        out["elements"] = rebased
    return out


def classify(record: JobRecord | None, output: Path) -> Action:
    """What running a line does, given its job log record (None: never run)."""
    if record is None:
        return "submit"
    if record.state == "saved":
        return "skip" if record.output == str(output) and output.is_file() else "pickup"
    if record.state == "failed":
        # Refused before a job existed: submitting again cannot pay twice. Else it failed on the host.
        return "submit" if not record.created_on_host else "skip"
    if record.state == "cancelled":
        return "skip"
    return "pickup"  # unfinished, uncertain, or succeeded and not saved yet


def _local_inputs(built: Iterable[tuple[ManifestLine, EditRequest, str, str, str, Path | None]]
                  ) -> dict[Path, list[int]]:
    """Every local file the lines read, and which lines read it."""
    read: dict[Path, list[int]] = {}
    for line, request, *_rest in built:
        for _field, ref in request.media():
            path = local_path(ref)
            if path is not None:
                read.setdefault(path.expanduser().resolve(), []).append(line.number)
    return read


def _line_record(client: AsyncEditClient, request: EditRequest, named: str) -> JobRecord | None:
    """The job log's record of a line's job: on a fallback list, the first host holding a job
    (a later host's record is under ``KEY.host``, as the client names it), else the first
    host's record (None: never run)."""
    if client.journal is None:
        return None
    first = client.journal.get(request.client_key or "")
    names = [n.strip() for n in named.split(",")]
    if len(names) == 1 or (first is not None and first.created_on_host):
        return first
    for i, name in enumerate(names[1:], start=1):
        try:
            canonical_name = client.host.provider_class(name).name
        except KlingError:
            continue
        later = client.journal.get(client_key_for(request, i, canonical_name).client_key or "")
        if later is not None and later.created_on_host:
            return later
    return first


def _same_request(client: AsyncEditClient, request: EditRequest, record: JobRecord, named: str) -> bool:
    """Whether the logged job under a line's explicit key is this line's request, as the client
    checks it at submit (:func:`~kling_core.client.pickup.same_request`, on the host that holds
    the job, which must be one of the line's hosts)."""
    hosts = []
    for name in named.split(","):
        with contextlib.suppress(KlingError):
            hosts.append(client.host.provider_class(name.strip()).name)
    return record.provider in hosts and same_request(record, request)


def plan_lines(client: AsyncEditClient, lines: Iterable[ManifestLine], *, manifest: Path,
               output_dir: Path | None = None, provider: str | None = None,
               problems: Iterable[Problem] = ()) -> BatchPlan:
    """Check every line and decide what each would do; ValidationError listing every problem
    (``problems``: those found reading the manifest, reported with these) if there is any."""
    manifest = manifest.expanduser().absolute()
    folder = manifest.parent
    out_dir = (output_dir.expanduser().absolute() if output_dir is not None else default_output_dir(manifest))
    salt = client.journal.salt() if client.journal is not None else ""
    problems = list(problems)
    provider_errors: dict[str, KlingError | None] = {}
    built: list[tuple[ManifestLine, EditRequest, str, str, str, Path | None]] = []

    for line in lines:
        n = line.number
        fields = _rebased_fields(dict(line.fields), folder)
        named = fields.pop("provider", None) or provider or client.default_provider
        names = [p.strip() for p in named.split(",")]
        if any(not p for p in names):
            problems.append(problem(n, "provider", f"{named!r}: an empty name in the list"))
            continue
        unusable = _unusable_list(client, named, names)
        if unusable:
            problems += [problem(n, "provider", message) for message in unusable]
            continue
        primary = names[0]
        output = fields.pop("output", None)
        video, prompt = fields.pop("video"), fields.pop("prompt")
        request, found = _request_on(client, names, video, prompt, fields, provider_errors)
        if request is None:
            problems += [problem(n, path, message) for path, message in found]
            if output is not None:
                try:
                    check_suffix(Path(output))
                except ValidationError as exc:
                    problems += [problem(n, p.path, p.message) for p in exc.problems]
            continue
        dest: Path | None = None
        if output is not None:
            try:
                dest = _check_output(Path(_rebase(output, folder)), request)
            except ValidationError as exc:
                problems += [problem(n, "output", p.message) for p in exc.problems]
                continue
        built.append((line, request, named, primary, canonical(request, named).identity, dest))

    plans: list[PlannedLine] = []
    seen_default: Counter[str] = Counter()
    where: dict[Path, int] = {}
    keys: dict[str, int] = {}
    read = _local_inputs(built)
    for line, request, named, primary, identity, dest in built:
        if dest is None:
            seen_default[identity] += 1
            nth = seen_default[identity]
            name = f"{default_stem(request.video)}-{identity[:8]}" + (f"-{nth}" if nth > 1 else "") + ".mp4"
            try:
                dest = _check_output(out_dir / name, request)
            except ValidationError as exc:
                problems += [problem(line.number, "output", p.message) for p in exc.problems]
                continue
        if dest in where:
            problems.append(problem(line.number, "output", f"{dest} is also the output of line {where[dest]}"))
            continue
        readers = [n for n in read.get(dest.resolve(), ()) if n != line.number]
        if readers:
            problems.append(problem(line.number, "output", f"{dest} is an input of line {readers[0]} (saving "
                                                           "would replace it while that line may read it)"))
            continue
        where[dest] = line.number
        key = request.client_key or line_key(salt, identity, dest)
        if key in keys:
            problems.append(problem(line.number, "client_key", f"{key!r} is also the key of line {keys[key]}"))
            continue
        keys[key] = line.number
        explicit = request.client_key is not None
        request = attrs.evolve(request, client_key=key)
        record = _line_record(client, request, named)
        if explicit and record is not None and not _same_request(client, request, record, named):
            problems.append(problem(line.number, "client_key", f"{key!r} was already used for a different request"))
            continue
        plans.append(PlannedLine(
            number=line.number, request=request, provider=named, primary=primary,
            output=dest, client_key=key, action=classify(record, dest),
            prior_state=record.state if record is not None else None,
            prior_job_id=record.job_id if record is not None else None,
            prior_error=record.error if record is not None else None,
        ))
    if problems:
        problems.sort(key=_line_number)
        raise ValidationError(problems, subject="manifest")
    return BatchPlan(lines=tuple(plans), manifest=manifest, output_dir=out_dir)


def _unusable_list(client: AsyncEditClient, named: str, names: list[str]) -> list[str]:
    """Why the client would refuse a provider list before trying any host of it: a name given
    twice (aliases resolved) or not installed. (A missing key only passes its host over.)"""
    try:
        provider_chain(named)
    except ValidationError as exc:
        return [f"{named!r}: {p.message}" for p in exc.problems]
    if len(names) == 1:
        return []  # a single provider's errors are reported with the request (_request_on)
    found: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        try:
            real = client.host.provider_class(name).name
        except KlingError as exc:
            found.append(f"{str(exc).removeprefix('provider: ')} (in {named!r})")
            continue
        if real in seen:
            found.append(f"{name!r} and {seen[real]!r} are one provider (in {named!r})")
        seen[real] = name
    return found


def _request_on(client: AsyncEditClient, names: list[str], video: str, prompt: str, fields: dict[str, Any],
                provider_errors: dict[str, KlingError | None]) -> tuple[EditRequest | None, list[tuple[str, str]]]:
    """The line's request, checked on the first host of its list that can take it (a fallback
    list is fine when any of its hosts can: the client passes over the others at run time).
    None and every host's problems when none can, or when the request is wrong in itself."""
    found: list[tuple[str, str]] = []
    for name in names:
        if name not in provider_errors:
            try:
                client.provider(name)
                provider_errors[name] = None
            except KlingError as exc:
                provider_errors[name] = exc
        err = provider_errors[name]
        suffix = f" (provider {name!r} of {','.join(names)!r})" if len(names) > 1 else ""
        if err is not None:
            found.append(("provider", f"{str(err).removeprefix('provider: ')}{suffix}"))
            continue
        try:
            request = client.request(video, prompt, provider=name, **fields)
            client.check(request, name)
        except UnsupportedError as exc:
            found += [(p.path, p.message + suffix) for p in exc.problems]
            continue
        except ValidationError as exc:  # wrong in itself: no host takes it
            return None, [(p.path, p.message) for p in exc.problems]
        except KlingError as exc:
            found.append(("", f"{exc}{suffix}"))
            continue
        if name != names[0]:
            request = client.request(video, prompt, provider=names[0], **fields)  # the first host's defaults
        return request, []
    return None, found


def _check_output(path: Path, request: EditRequest) -> Path:
    return check_output(check_suffix(path), inputs=[ref for _field, ref in request.media()])


def _line_number(p: Problem) -> int:
    head = p.path.split(",", 1)[0].removeprefix("line ")
    return int(head) if head.isdigit() else 0
