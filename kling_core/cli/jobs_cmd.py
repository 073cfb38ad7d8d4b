"""The job log from the command line: ``kling jobs [show|resume|forget]`` and ``kling cache prune``.

Every command takes ``--json``: the answer as JSON on stdout, and on failure the error as
``{"error": {...}}`` on stdout too (the one-line message still goes to stderr).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from kling_core.cli.common import State
from kling_core.cli.completion_cmd import complete_providers
from kling_core.cli.job_cmd import (
    _interrupted,
    emit_result,
    json_errors,
    parse_timeout,
    release_unless_pending,
)
from kling_core.cli.progress import JobProgress
from kling_core.errors import ValidationError
from kling_core.joblog import JobRecord, prune_cache
from kling_core.joblog.costs import job_cost, total_line
from kling_core.joblog.hints import record_hints
from kling_core.outputs import check_output, check_suffix, media_refs, reserve_default_output

pass_state = click.make_pass_decorator(State)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _limit(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError.single("limit", f"{raw!r} is not a whole number (0 lists every job)") from None
    if value < 0:
        raise ValidationError.single("limit", f"{raw!r} must be 0 (every job) or more")
    return value


def _table(records: Sequence[JobRecord]) -> list[str]:
    rows = [("CREATED", "STATE", "PROVIDER", "CLIENT KEY", "JOB ID", "COST", "OUTPUT / ERROR")]
    for r in records:
        note = r.output if r.state == "saved" else (r.error or r.output or "")
        rows.append((_when(r.created_at), r.state, r.provider, r.client_key, r.job_id or "-", job_cost(r).text,
                     note or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:6], widths, strict=True)), row[6]]).rstrip()
             for row in rows]
    return [*lines, total_line(records)]


def _can_reconcile(state: State, provider: str) -> bool:
    cls = state.host.providers.get(provider)
    return bool(cls is not None and cls.capabilities.can_reconcile)


def _show_lines(record: JobRecord, hints: list[str]) -> list[str]:
    lines = [
        f"client key:  {record.client_key} (take {record.take})",
        f"provider:    {record.provider}" + (f" ({record.model})" if record.model else ""),
        f"state:       {record.state}",
        f"job id:      {record.job_id or '- (none known)'}",
        f"created:     {_when(record.created_at)}",
        f"updated:     {_when(record.updated_at)}",
    ]
    if record.output:
        lines.append(f"output:      {record.output}")
    cost = job_cost(record)
    if cost.text != "-":
        lines.append(f"cost:        {cost.text} ({cost.basis})")
    if record.cost:
        lines.append("reported:    " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in record.cost.items()
                                              if v is not None))
    if record.estimate and record.estimate.get("source"):
        lines.append(f"price from:  {record.estimate['source']} (as of {record.estimate.get('as_of')})")
    if record.attempts:
        lines.append("attempts:")
        lines += [f"  {a.get('provider')}: {a.get('outcome')}" + (f" ({a['reason']})" if a.get("reason") else "")
                  + (f" [client key {a['client_key']}]" if a.get("client_key") and a.get("client_key") != record.client_key
                     else "")
                  for a in record.attempts]
    if record.error:
        lines.append(f"last error:  {record.error}")
    doc = (record.request or {}).get("request") or {}
    if doc:
        lines.append(f"prompt:      {doc.get('prompt')}")
        digests = (record.request or {}).get("media_sha256") or {}
        lines.append(f"video:       {doc.get('video')}"
                     + (f" (sha256 {digests['video'][:12]}…)" if "video" in digests else ""))
        for i, ref in enumerate(doc.get("images") or []):
            lines.append(f"image {i + 1}:     {ref}")
    lines.append("history:")
    lines += [f"  {_when(e.at)}  {e.state}" + (f"  ({e.detail})" if e.detail else "") for e in record.events]
    if hints:
        lines.append("next:")
        lines += [f"  {h}" for h in hints]
    return lines


@click.group("jobs", invoke_without_command=True)
@click.option("--state", "states", multiple=True, metavar="STATE",
              help="Only jobs in this state (repeatable or comma-separated; also 'unfinished', 'finished').")
@click.option("--provider", default=None, shell_complete=complete_providers, help="Only jobs on this provider.")
@click.option("--since", default=None, metavar="AGE", help="Only jobs created in the last AGE (90s, 30m, 2h, 1d, 2w).")
@click.option("-n", "--limit", "limit_raw", default="20", show_default=True, metavar="N",
              help="At most N jobs, newest first (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (or the error as JSON).")
@click.pass_context
def jobs(ctx: click.Context, states: tuple[str, ...], provider: str | None, since: str | None, limit_raw: str,
         as_json: bool) -> None:
    """List the jobs in the job log, newest first; `kling jobs show|resume|forget` act on one.

    The log lives in $KLING_STATE_DIR (default ~/.local/state/kling). Uncertain jobs (a submit
    whose answer was lost) are listed as `uncertain`; `kling jobs show KEY` says how to settle one.
    """
    if ctx.invoked_subcommand is not None:
        return
    _list(ctx.find_object(State), states=states, provider=provider, since=since, limit_raw=limit_raw, as_json=as_json)


@json_errors
def _list(state: State | None, *, states: tuple[str, ...], provider: str | None, since: str | None, limit_raw: str,
          as_json: bool) -> None:
    assert state is not None
    limit = _limit(limit_raw)
    client = state.client(None)
    records = client.jobs(state=states or None, provider=provider, since=since, limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_document(events=False) for r in records], indent=2))
    elif records:
        click.echo("\n".join(_table(records)))
    else:
        click.echo("no jobs" + (" match" if states or provider or since else " yet"), err=True)


@jobs.command("show")
@click.argument("ref", metavar="KEY|JOB_ID")
@click.option("--json", "as_json", is_flag=True, help="Print the job (or the error) as JSON.")
@pass_state
@json_errors
def show(state: State, ref: str, as_json: bool) -> None:
    """Everything the log knows about one job: request, job id, every state change, what to run next."""
    record = state.client(None).job(ref)
    hints = record_hints(record, can_reconcile=_can_reconcile(state, record.provider))
    if as_json:
        click.echo(json.dumps({**record.to_document(), "next": hints}, indent=2))
    else:
        click.echo("\n".join(_show_lines(record, hints)))


@jobs.command("resume")
@click.argument("ref", metavar="KEY|JOB_ID")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .mp4 (default: where the job was started to save, else <video>-edited.mp4 here).")
@click.option("--timeout", "timeout_raw", default=None, metavar="SECONDS", help="Stop waiting after this long.")
@click.option("--job-id", default=None, help="The host's job id for an uncertain job (e.g. from its dashboard).")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@pass_state
@json_errors
def resume(state: State, ref: str, output: str | None, timeout_raw: str | None, job_id: str | None, as_json: bool,
           quiet: bool) -> int:
    """Pick a job up: wait for it and save its video. Never submits; an uncertain job is looked
    up on the host where it can be (else give --job-id)."""
    timeout = parse_timeout(timeout_raw)
    out = check_suffix(Path(output)) if output else None

    async def run() -> int:
        async with state.client(None) as client:
            record = client.job(ref)
            inputs = media_refs(record.request)
            reserved: Path | None = None
            if out is not None:
                dest = check_output(out, inputs=inputs)
            elif record.output:
                dest = check_output(record.output, inputs=inputs)
            else:
                video = str(((record.request or {}).get("request") or {}).get("video") or record.job_id or "video")
                dest = reserved = reserve_default_output(video)
            with JobProgress(enabled=not quiet) as progress:
                progress.line(f"resuming {record.provider} job {record.job_id or '(id not known yet)'} "
                              f"(client key {record.client_key})")
                try:
                    res = await client.resume(record.client_key, output=dest, timeout=timeout, job_id=job_id,
                                              on_status=progress.update)
                except asyncio.CancelledError:
                    progress.interrupted()
                    now = client.journal.get(record.client_key) if client.journal is not None else None
                    code = await _interrupted(client, now.handle if now else None, record.provider, record.client_key)
                    release_unless_pending(client, reserved)
                    return code
                except BaseException:
                    release_unless_pending(client, reserved)
                    raise
            emit_result(res, as_json)
            return 0

    return asyncio.run(run())


@jobs.command("forget")
@click.argument("ref", metavar="KEY")
@click.option("--force", is_flag=True, help="Forget an unfinished or uncertain job too (a re-run may then pay again).")
@click.option("--json", "as_json", is_flag=True, help="Print the forgotten job (or the error) as JSON.")
@pass_state
@json_errors
def forget(state: State, ref: str, force: bool, as_json: bool) -> None:
    """Drop a job from the log (refused for an unfinished job unless --force)."""
    record = state.client(None).forget(ref, force=force)
    if as_json:
        click.echo(json.dumps({"forgotten": record.to_document(events=False)}, indent=2))
    else:
        click.echo(f"forgot {record.client_key} ({record.state}, {record.provider} job {record.job_id or '-'})")


@click.group("cache")
def cache() -> None:
    """Manage $KLING_CACHE_DIR: the mock's renders and cached downloads."""


@cache.command("prune")
@click.option("--older-than", "older_than", default="7d", show_default=True, metavar="AGE",
              help="Remove entries unchanged for this long (90s, 30m, 2h, 1d, 2w).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report (or the error) as JSON.")
@pass_state
@json_errors
def prune(state: State, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove old renders and downloads kling wrote, nothing else; renders in progress and unsaved results stay."""
    report = prune_cache(older_than, dry_run=dry_run, config=state.config)
    if as_json:
        click.echo(json.dumps(report.to_document(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for entry in report.removed:
        click.echo(f"{verb} {entry.path} ({_size(entry.bytes)})")
    kept = f"; kept {len(report.kept_in_use)} old entries still in use" if report.kept_in_use else ""
    count = len(report.removed)
    click.echo(f"{verb} {count} entr{'y' if count == 1 else 'ies'} ({_size(report.bytes)}) under "
               f"{', '.join(report.roots) or 'no cache folder yet'}{kept}")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


commands: list[Any] = [jobs, cache]
