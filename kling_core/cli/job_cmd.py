"""Job commands: edit, status, result, cancel (the job log's own commands are in jobs_cmd)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from kling_core.cli.common import Problems, State
from kling_core.cli.completion_cmd import complete_providers
from kling_core.cli.estimates import parse_max_cost, print_comparison, print_dry_run
from kling_core.cli.progress import JobProgress, describe
from kling_core.client import AsyncEditClient, check_timeout
from kling_core.client.fallback import chain_for, pending_on
from kling_core.client.joblog_ops import release_unless_named
from kling_core.contract.checks import local_path
from kling_core.contract.models import (
    ASPECT_RATIO_VALUES,
    EDIT_MODES,
    MODELS,
    QUALITIES,
    AspectRatio,
    EditMode,
    EditResult,
    ModelName,
    Quality,
)
from kling_core.contract.status import Cancelled, JobStatus, Queued, Running, Succeeded
from kling_core.errors import KlingError, Problem, ValidationError
from kling_core.job_commands import jobs_command, resume_command
from kling_core.outputs import check_output, check_suffix, media_refs, reserve_default_output
from kling_core.provider import JobHandle
from kling_core.serialization import unstructure

pass_state = click.make_pass_decorator(State)
INTERRUPTED = 130
NOT_FINISHED = 3  # `kling result --no-wait` on a job still queued or running


def parse_element(spec: str, index: int) -> dict[str, Any]:
    """``FRONTAL:REF[,REF...]``; a ``:`` that starts ``://`` belongs to a URL, not the split."""
    for i, ch in enumerate(spec):
        if ch == ":" and spec[i + 1 : i + 3] != "//" and not (i == 1 and spec[0].isalpha()):
            frontal, refs = spec[:i], spec[i + 1 :]
            break
    else:
        raise ValidationError.single(
            f"elements[{index}]", f"{spec!r} must be FRONTAL:REF[,REF...] (a frontal image and 1–3 reference images)"
        )
    return {"frontal_image": frontal, "reference_images": [r for r in refs.split(",") if r]}


def parse_option(raw: str) -> tuple[str, Any]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise ValidationError.single("options", f"{raw!r} must be KEY=VALUE")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    if not isinstance(parsed, (str, int, float, bool)):
        parsed = value
    return key, parsed


def parse_timeout(raw: str | None) -> float | None:
    """``--timeout SECONDS``: a finite number in (0, 7 days]; else exit 2 naming ``timeout``."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError.single("timeout", f"{raw!r} is not a number of seconds") from None
    return check_timeout(value)


def error_document(exc: KlingError) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code}
    if isinstance(exc, ValidationError):
        doc["problems"] = [{"path": p.path, "message": p.message} for p in exc.problems]
    # retry_after: the seconds a rate limit asks a script to wait before trying again
    for name in ("provider", "job_id", "client_key", "code", "status_code", "retry_after", "file", "key"):
        value = getattr(exc, name, None)
        if value is not None:
            doc[name] = value
    return doc


F = TypeVar("F", bound=Callable[..., Any])


def json_errors(fn: F) -> F:
    """With ``--json``, an expected error is also printed as ``{"error": {...}}`` on stdout."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KlingError as exc:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": error_document(exc)}, indent=2))
            raise

    return cast(F, wrapper)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        if not value:
            return [(prefix, "-")] if prefix else []
        return [row for k, v in value.items() for row in _flatten(f"{prefix}.{k}" if prefix else str(k), v)]
    if isinstance(value, (list, tuple)):
        if value and all(not isinstance(v, (Mapping, list, tuple)) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        if not value:
            return [(prefix, "-")]
        return [row for i, v in enumerate(value) for row in _flatten(f"{prefix}[{i}]", v)]
    return [(prefix, "-" if value is None else str(value).lower() if isinstance(value, bool) else str(value))]


def dry_run_lines(provider: str, answer: Mapping[str, Any]) -> list[str]:
    """A dry run's answer for people: one ``key: value`` line per field (``--json`` prints it raw)."""
    rows = _flatten("", answer)
    width = max((len(k) for k, _ in rows), default=0)
    return [f"dry run on {provider}: no job was created", *(f"  {k.ljust(width)}  {v}" for k, v in rows)]


def emit_result(result: EditResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(unstructure(result), indent=2))
    else:
        click.echo(result.video.path or result.video.url)


def release_unless_pending(client: AsyncEditClient, reserved: Path | None) -> None:
    """Give back a reserved default output, unless an unfinished job will still save to it."""
    if reserved is not None and client.journal is not None:
        release_unless_named(client.journal, str(reserved))


def passed_over(client: AsyncEditClient, client_key: str) -> list[str]:
    """The hosts of a provider list that did not take the job, as the job log has them."""
    record = client.journal.get(client_key) if client.journal is not None else None
    attempts = record.attempts if record is not None else ()
    return [f"{a.get('provider')}: {a.get('outcome')} ({a.get('reason')}); tried the next host"
            for a in attempts if a.get("outcome") in ("refused", "skipped")]


async def _interrupted(client: AsyncEditClient, handle: JobHandle | None, provider: str, client_key: str | None) -> int:
    """Ctrl-C: cancel where the host can; otherwise say how to pick the job up again."""
    if handle is None:
        key = f" (client key {client_key})" if client_key else ""
        settle = f"\n  see it:     {jobs_command('show', client_key)}" if client_key else ""
        click.echo(f"interrupted while submitting: the job may or may not exist on {provider}{key}; "
                   f"it was not resubmitted{settle}", err=True)
        return INTERRUPTED
    record = client.journal.get(handle.client_key) if client.journal is not None and handle.client_key else None
    if record is not None and record.state in ("succeeded", "saved"):
        # Interrupted while saving: the job is done and paid for; cancelling could only cost its result.
        click.echo(f"interrupted: {handle.provider} job {handle.job_id} had finished and its result is kept; "
                   f"save it with `{resume_command(record.client_key)}`", err=True)
        return INTERRUPTED
    prov = client.provider(handle.provider)
    if prov.capabilities.can_cancel:
        try:
            accepted = await asyncio.wait_for(client.cancel(handle), timeout=15)
        except Exception as exc:  # cancel is best effort; the job id below is what matters
            accepted = False
            click.echo(f"cancel failed: {exc}", err=True)
        if accepted:
            click.echo(f"interrupted: cancelled {handle.provider} job {handle.job_id}", err=True)
            return INTERRUPTED
    resume = f"\n  resume it:  {resume_command(handle.client_key)}" if handle.client_key else ""
    click.echo(
        f"interrupted: {handle.provider} job {handle.job_id} may still be running.{resume}\n"
        f"  check it:   kling status {handle.provider} {handle.job_id}\n"
        f"  fetch it:   kling result {handle.provider} {handle.job_id} -o OUT.mp4",
        err=True,
    )
    return INTERRUPTED


@click.command("edit")
@click.argument("video")
@click.option("--prompt", "-p", required=True, help="What to change; refer to inputs as @Image1, @Element1, @Video1.")
@click.option("--image", "images", multiple=True, metavar="REF", help="Reference image (URL or path); repeatable.")
@click.option("--element", "elements", multiple=True, metavar="FRONTAL:REF[,REF...]",
              help="An element: frontal image and 1–3 reference images; repeatable.")
@click.option("--keep-audio/--no-keep-audio", default=None, help="Keep the source audio (default: no).")
@click.option("--quality", type=click.Choice(QUALITIES), default=None, help="std (720p) or pro (1080p; default).")
@click.option("--model", type=click.Choice(MODELS), default=None, help="kling-o1 (default) or kling-o3.")
@click.option("--edit-mode", type=click.Choice(EDIT_MODES), default=None,
              help="edit (transform the video; default) or reference (use it as a guide).")
@click.option("--aspect-ratio", type=click.Choice(ASPECT_RATIO_VALUES), default=None,
              help="Only where a model and edit mode accept it (auto: follow the input).")
@click.option("--duration", type=int, default=None, help="Seconds; only where a model accepts it.")
@click.option("--webhook", "webhook_url", default=None, help="URL the host calls when the job ends.")
@click.option("--client-key", default=None,
              help="Your id for this job (default: derived from the request, so a re-run picks its job up).")
@click.option("--new", is_flag=True, help="Submit a new job even if this same edit has one unfinished.")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="Provider option; repeatable.")
@click.option("--provider", default=None, shell_complete=complete_providers, metavar="NAME[,NAME...]",
              help="Provider, or a list tried in order: the next only when the one before certainly made no job "
                   "(default: config's default_provider and fallback_providers, else mock).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .mp4 (default: <video>-edited.mp4 here, or where this job's first run said).")
@click.option("--timeout", "timeout_raw", default=None, metavar="SECONDS",
              help="Stop waiting after this long (the job keeps running; `kling jobs resume` picks it up).")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")
@click.option("--dry-run", is_flag=True,
              help="Check the request and print its price estimate (and the host's own dry run where it has one); "
                   "no job is created.")
@click.option("--compare", is_flag=True,
              help="With or without --dry-run: the estimate on every installed provider that can serve the request; "
                   "nothing is submitted.")
@click.option("--max-cost", "max_cost_raw", default=None, metavar="USD",
              help="Refuse before submitting when the estimate is higher (or unknown); with a provider list, "
                   "a host over it is passed over.")
@click.option("--no-wait", is_flag=True, help="Submit, print the job, and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--sheet", "sheet", type=click.Path(), default=None, metavar="PATH",
              help="Also write a contact sheet .png of the input and output (see `kling compare`); local VIDEO only.")
@pass_state
@json_errors
def edit(state: State, video: str, prompt: str, images: tuple[str, ...], elements: tuple[str, ...],
         keep_audio: bool | None, quality: Quality | None, model: ModelName | None, edit_mode: EditMode | None,
         aspect_ratio: AspectRatio | None, duration: int | None, webhook_url: str | None, client_key: str | None, new: bool,
         options: tuple[str, ...], provider: str | None, output: str | None, timeout_raw: str | None, as_json: bool,
         dry_run: bool, no_wait: bool, quiet: bool, sheet: str | None = None, compare: bool = False,
         max_cost_raw: str | None = None) -> int:
    """Edit VIDEO (a local path or an http(s) URL) as the prompt says; write the output .mp4.

    Running the same command again picks up its job (never paying twice) until its video was
    saved; after that it makes a new take. --new always submits a new job.
    """
    problems = Problems()
    parsed_elements = [e for i, spec in enumerate(elements) if (e := problems.take(parse_element, spec, i)) is not None]
    opts = dict(kv for raw in options if (kv := problems.take(parse_option, raw)) is not None)
    timeout = problems.take(parse_timeout, timeout_raw)
    max_cost = problems.take(parse_max_cost, max_cost_raw)
    dry_run = dry_run or compare
    if new and client_key is not None:
        problems.append(Problem("new", "--new cannot be combined with --client-key (a key names one job)"))
    if sheet is not None and (dry_run or no_wait):
        problems.append(Problem("sheet", "--sheet needs the edit's output: not with --dry-run or --no-wait"))
    elif sheet is not None and local_path(video) is None:
        problems.append(Problem("sheet", "--sheet needs a local VIDEO file, not a URL"))
    if problems:
        raise ValidationError(problems)
    out = check_suffix(Path(output)) if output else None
    if sheet is not None:
        from kling_core.cli.compare_cmd import caption_for, check_sheet_path  # only for --sheet
    sheet_dest = check_sheet_path(sheet, [video, *([output] if output else [])]) if sheet is not None else None

    async def run() -> int:
        async with state.client(provider) as client:
            request = client.request(
                video, prompt, images=images, elements=parsed_elements, model=model, quality=quality,
                keep_audio=keep_audio, edit_mode=edit_mode, aspect_ratio=aspect_ratio, duration=duration,
                webhook_url=webhook_url, client_key=client_key, options=opts, provider=provider,
            )
            chain = chain_for(client, provider)
            if compare:
                return print_comparison(client, request, as_json=as_json, max_cost=max_cost)
            if dry_run:
                return await print_dry_run(client, request, chain, as_json=as_json, max_cost=max_cost)
            prov = client.provider(chain[0]) if len(chain) == 1 else None
            if prov is not None:
                client.check(request, prov.name)  # one host: every problem now, before any upload
            first = chain[0]
            inputs = media_refs(request)
            dest = check_output(out, inputs=inputs) if out is not None else None
            reserved: Path | None = None
            if dest is None and not no_wait:
                earlier = pending_on(client, request, chain, new=new)
                if earlier is not None and earlier.output:
                    dest = check_output(earlier.output, inputs=inputs)  # where this job's first run would save
                else:
                    dest = reserved = reserve_default_output(video)
            handle: JobHandle | None = None
            try:
                with JobProgress(enabled=not quiet) as progress:
                    try:
                        started = await client.start(request, provider=chain, new=new, output=dest,
                                                     max_cost=max_cost)
                        handle = started.handle
                        State.settled()
                        for line in passed_over(client, started.client_key):
                            progress.line(line)
                        if started.resumed:
                            progress.line(f"resumed {handle.provider} job {handle.job_id} (client key "
                                          f"{started.client_key}): not submitted again")
                        else:
                            progress.submitted(handle.job_id, handle.provider)
                        if no_wait:
                            click.echo(json.dumps(unstructure(handle), indent=2) if as_json else handle.job_id)
                            return 0
                        assert dest is not None
                        result = await client.wait(handle, on_status=progress.update, timeout=timeout)
                        result = await client.save(result, dest)
                    except asyncio.CancelledError:
                        progress.interrupted()
                        key = handle.client_key if handle is not None else request.client_key
                        if key is None:
                            earlier = pending_on(client, request, chain)
                            key = earlier.client_key if earlier is not None else None
                        code = await _interrupted(client, handle, first, key)
                        release_unless_pending(client, reserved)
                        return code
            except BaseException:
                release_unless_pending(client, reserved)
                raise
            emit_result(result, as_json)
            if sheet_dest is not None:
                return await _write_sheet(state, video, result, sheet_dest, caption_for(
                    None, provider=result.provider, request=unstructure(request)))
            return 0

    return asyncio.run(run())


async def _write_sheet(state: State, video: str, result: EditResult, dest: Path, caption: str) -> int:
    """``kling edit --sheet``: the edit is saved already, so a failed sheet is reported, not raised."""
    from kling_core.media.locate import require_ffmpeg
    from kling_core.media.sheet import render_sheet

    source = local_path(video)
    try:
        if result.video.path is None or source is None:
            raise ValidationError.single("sheet", "no local input and output to compare")
        done = await render_sheet(require_ffmpeg(state.config.media), source, result.video.path, dest, caption=caption)
    except KlingError as exc:
        click.echo(f"error: contact sheet not written: {exc}", err=True)
        return exc.exit_code
    click.echo(f"contact sheet: {done.path}", err=True)
    return 0


@click.command("status")
@click.argument("provider", shell_complete=complete_providers)
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status (or the error) as JSON.")
@pass_state
@json_errors
def status(state: State, provider: str, job_id: str, as_json: bool) -> None:
    """Show the state of a job by its id."""

    async def run() -> None:
        async with state.client(provider) as client:
            st = await client.status(client.handle(provider, job_id))
            if as_json:
                click.echo(json.dumps(unstructure(st), indent=2))
            elif isinstance(st, Succeeded):
                click.echo(f"succeeded: {st.result.video.url}")
            else:
                click.echo(describe(st) + (f": {st.error.message}" if st.state == "failed" else ""))
                for line in getattr(st, "logs", ()):  # e.g. the mock's "renderer not alive" note
                    click.echo(f"  {line}")

    asyncio.run(run())


@click.command("result")
@click.argument("provider", shell_complete=complete_providers)
@click.argument("job_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .mp4.")
@click.option("--wait/--no-wait", default=True,
              help=f"Wait for a job still running (default), or exit {NOT_FINISHED} at once if it has not finished.")
@click.option("--timeout", "timeout_raw", default=None, metavar="SECONDS", help="Stop waiting after this long.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@pass_state
@json_errors
def result(state: State, provider: str, job_id: str, output: str, wait: bool, timeout_raw: str | None, as_json: bool,
           quiet: bool) -> int:
    """Fetch a job's output video (waiting for it unless --no-wait).

    Exit codes: 0 saved; 1 the job failed or was cancelled (or the host failed); 2 bad input;
    3 with --no-wait, the job has not finished yet (its state is printed; with --json as the
    status document on stdout). Run it again later, or without --no-wait.
    """
    timeout = parse_timeout(timeout_raw)
    check_suffix(Path(output))

    async def run() -> int:
        async with state.client(provider) as client:
            handle = client.handle(provider, job_id)
            record = client.journal.find_job(handle.provider, job_id) if client.journal is not None else None
            dest = check_output(output, inputs=media_refs(record.request if record is not None else None))
            with JobProgress(enabled=not quiet) as progress:
                if wait:
                    res = await client.wait(handle, on_status=progress.update, timeout=timeout)
                else:
                    st = await client.status(handle)
                    if isinstance(st, (Queued, Running)):
                        if as_json:
                            click.echo(json.dumps(unstructure(st), indent=2))
                        click.echo(f"{provider} job {job_id} is {describe(st)}: not finished yet; run this again "
                                   f"later, or without --no-wait to wait for it", err=True)
                        return NOT_FINISHED
                    if isinstance(st, Succeeded):
                        res = st.result
                    else:  # failed or cancelled: the same error waiting would give
                        res = await client.wait(handle, timeout=timeout)
                res = await client.save(res, dest)
            emit_result(res, as_json)
            return 0

    return asyncio.run(run())


@click.command("cancel")
@click.argument("provider", shell_complete=complete_providers)
@click.argument("job_id")
@pass_state
def cancel(state: State, provider: str, job_id: str) -> int:
    """Ask the host to cancel a job (where it can).

    Exits 0 when the cancellation was accepted or the job was already cancelled; 1 when the
    job had already succeeded or failed, or the host refused.
    """

    async def run() -> int:
        async with state.client(provider) as client:
            handle = client.handle(provider, job_id)
            if await client.cancel(handle):
                click.echo(f"cancellation requested for {provider} job {job_id}")
                return 0
            try:
                now: JobStatus | None = await client.status(handle)
            except KlingError:
                now = None
            if isinstance(now, Cancelled):
                click.echo(f"{provider} job {job_id} was already cancelled")
                return 0
            if now is not None and now.state in ("succeeded", "failed"):
                click.echo(f"{provider} job {job_id} could not be cancelled: it already {now.state}", err=True)
                return 1
            click.echo(f"{provider} job {job_id} could not be cancelled (it may have finished)", err=True)
            return 1

    return asyncio.run(run())


commands = [edit, status, result, cancel]
