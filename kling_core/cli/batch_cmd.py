"""``kling batch FILE``: every edit of a JSONL or CSV manifest (see docs/batch.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from kling_core.batches.api import load_plan
from kling_core.batches.manifest import FORMATS
from kling_core.batches.plan import BatchPlan, PlannedLine
from kling_core.batches.results import BatchLineResult, ResultsFile, Tally
from kling_core.batches.runner import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    BatchEvents,
    check_concurrency,
    run_plan,
)
from kling_core.cli.common import Problems, State
from kling_core.cli.completion_cmd import complete_providers
from kling_core.cli.estimates import parse_max_cost
from kling_core.cli.job_cmd import json_errors, parse_timeout
from kling_core.client.aio import AsyncEditClient
from kling_core.client.submit import Started
from kling_core.contract.checks import local_path
from kling_core.contract.status import JobStatus
from kling_core.errors import KlingError, ValidationError
from kling_core.money import format_usd
from kling_core.pricing import CostEstimate, estimate_cost

pass_state = click.make_pass_decorator(State)
INTERRUPTED = 130
STDOUT_CLOSED = -1  # execute()'s own marker: exit 1
RESUME_HINT = "run the same command again to resume: finished lines are skipped, started jobs picked up"


class BatchProgress(BatchEvents):
    """An overall bar (rich, on a terminal) with one line per job event above it; plain lines otherwise."""

    def __init__(self, total: int, *, enabled: bool, tty: bool | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.done = 0
        self.running = 0
        self.slot_waits: set[int] = set()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            click.echo(text, err=True)

    def _refresh(self) -> None:
        if self._progress is not None:
            wait = f", {len(self.slot_waits)} waiting for a slot" if self.slot_waits else ""
            self._progress.update(self._task, completed=self.done, description=f"{self.running} running{wait}")

    # -- events from the runner ------------------------------------------------------------
    def waiting(self, line: PlannedLine, provider: str, limit: int) -> None:
        self.slot_waits.add(line.number)
        self.line(f"line {line.number}: waiting for a slot on {provider} ({limit} jobs in flight there)")
        self._refresh()

    def bound(self, line: PlannedLine, started: Started) -> None:
        self.slot_waits.discard(line.number)
        self.running += 1
        h = started.handle
        if started.resumed:
            self.line(f"line {line.number}: picked up {h.provider} job {h.job_id}: not submitted again")
        else:
            self.line(f"line {line.number}: submitted {h.provider} job {h.job_id}")
        self._refresh()

    def status(self, line: PlannedLine, status: JobStatus) -> None:
        pass  # per-job states would flood a batch's output; the bar shows what runs

    def finished(self, result: BatchLineResult) -> None:
        self.done += 1
        if result.action in ("submitted", "picked_up"):
            self.running -= 1
        self.slot_waits.discard(result.line)
        self.line(f"[{self.done}/{self.total}] line {result.line}: {describe(result)}")
        self._refresh()

    def interrupted(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            sys.stderr.write("\n")


def one_line(text: str | None) -> str:
    """A multi-line error (a list of problems) on one line, for per-job lines and the table."""
    return "; ".join(part.strip(" -") for part in (text or "").splitlines() if part.strip())


def describe(result: BatchLineResult) -> str:
    job = f"{result.provider} job {result.job_id}" if result.job_id else result.provider
    if result.action == "skipped":
        if result.state == "saved":
            return f"skipped: saved by an earlier run ({result.output})"
        return f"skipped: {result.state} in an earlier run ({job}): {one_line(result.error) or 'no detail'}"
    if result.state == "saved":
        took = f", {result.seconds:.1f} s" if result.seconds is not None else ""
        return f"saved {result.output} ({job}{took})"
    return f"{result.state} ({job}): {one_line(result.error)}"


def summary_lines(tally: Tally, *, planned: int | None = None, limit: int = 50) -> list[str]:
    """The table printed at the end: counts by outcome and by what this run did, then the lines
    that did not finish (the first ``limit`` of them; the results JSONL has all)."""
    rows = [("saved", tally.by_state["saved"]), ("failed", tally.by_state["failed"]),
            ("cancelled", tally.by_state["cancelled"]), ("not run", tally.by_state["not_run"])]
    did = [("submitted", tally.by_action["submitted"]), ("picked up", tally.by_action["picked_up"]),
           ("skipped (earlier run)", tally.by_action["skipped"]), ("not started", tally.by_action["not_started"])]
    planned = tally.total if planned is None else planned
    head = f"batch: {planned} lines" + (f", {tally.total} reported" if tally.total != planned else "")
    out = [head, "  outcome                 lines   this run                lines"]
    for (a, an), (b, bn) in zip(rows, did, strict=True):
        out.append(f"  {a:<22} {an:>6}   {b:<22} {bn:>6}")
    if tally.problems:
        shown = tally.problems[:limit]
        width = max(6, *(len(r.job_id or "-") for r in shown))
        pwidth = max(8, *(len(r.provider) for r in shown))
        out.append("  lines not saved:")
        out.append(f"    {'line':>6}  {'state':<9}  {'provider':<{pwidth}}  {'job id':<{width}}  error")
        for r in shown:
            error = one_line(r.error)
            out.append(f"    {r.line:>6}  {r.state:<9}  {r.provider:<{pwidth}}  {(r.job_id or '-'):<{width}}  {error}")
        if len(tally.problems) > limit:
            out.append(f"    ... and {len(tally.problems) - limit} more (see the results JSONL)")
    return out


# -- costs (kling_core.pricing, where installed) -------------------------------------------------
def estimates(client: AsyncEditClient, lines: Iterable[PlannedLine]) -> dict[int, CostEstimate | KlingError]:
    """Each line's cost estimate (the error where it cannot be made, e.g. a video that cannot be probed).

    A fallback list is priced at its most expensive host that could serve the line (an
    unknown price outranks any known one): the run may land on any of them, and a budget
    priced on the first host alone would not hold when that host is passed over.
    """
    # One host's estimate depends only on what pricing reads (the video may be probed: done once);
    # which hosts of a list count depends on the whole line, so that is decided per line.
    memo: dict[tuple[Any, ...], CostEstimate | KlingError] = {}
    return {line.number: _line_estimate(client, line, memo) for line in lines}


def _line_estimate(client: AsyncEditClient, line: PlannedLine,
                   memo: dict[tuple[Any, ...], CostEstimate | KlingError]) -> CostEstimate | KlingError:
    names = [n.strip() for n in line.provider.split(",")]
    if len(names) > 1:
        from kling_core.cli.estimates import capability_problems, key_missing

        capable = [n for n in names if not capability_problems(client, n, line.request)]
        usable = [n for n in capable if not key_missing(client, n)] or capable
        names = usable or names[:1]
    found: list[CostEstimate] = []
    r = line.request
    for name in names:
        key = (name, r.model, r.quality, r.edit_mode, r.video, r.duration)
        if key not in memo:
            try:
                memo[key] = estimate_cost(client, r, provider=name)
            except KlingError as exc:
                memo[key] = exc
        est = memo[key]
        if isinstance(est, KlingError):
            return est
        found.append(est)
    unknown = [est for est in found if est.usd is None]
    return unknown[0] if unknown else max(found, key=lambda est: est.usd or 0.0)


def usd_text(est: CostEstimate | KlingError) -> str:
    if isinstance(est, KlingError):
        return "unknown"
    if est.usd is None:
        return "unknown"
    return ("<=" if est.upper_bound else "") + format_usd(est.usd)  # as `kling jobs` shows it


def submit_cost(plan: BatchPlan, costs: dict[int, CostEstimate | KlingError]) -> tuple[float, list[str]]:
    """The estimated dollars of the lines a run would submit, and the lines of unknown price."""
    total = 0.0
    unknown: list[str] = []
    for line in plan.lines:
        if line.action != "submit":
            continue  # a pick-up or a skip submits nothing more
        est = costs[line.number]
        if isinstance(est, KlingError) or est.usd is None:
            unknown.append(str(line.number))
        else:
            total += est.usd
    return total, unknown


def check_budget(plan: BatchPlan, costs: dict[int, CostEstimate | KlingError], max_cost: float) -> float:
    """Refuse (exit 2, nothing submitted) a batch whose submits may cost more than ``max_cost``."""
    total, unknown = submit_cost(plan, costs)
    if unknown:
        shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        raise ValidationError.single("max_cost", f"the price of line(s) {shown} is unknown, so --max-cost "
                                                 f"{format_usd(max_cost)} cannot be kept (see --dry-run)")
    if total > max_cost:
        raise ValidationError.single("max_cost", f"the lines to submit are estimated at {format_usd(total)}, "
                                                 f"over --max-cost {format_usd(max_cost)}; nothing was submitted "
                                                 "(see --dry-run)")
    return total


def print_plan(client: AsyncEditClient, plan: BatchPlan, as_json: bool, max_cost: float | None = None) -> int:
    """The dry run's plan; with ``max_cost``, whether the real run would be refused (then exit 2,
    as the run would: the reason on stderr, or ``max_cost.problem`` in the JSON)."""
    costs = estimates(client, plan.lines)
    over: str | None = None
    if max_cost is not None:
        try:
            check_budget(plan, costs, max_cost)
        except ValidationError as exc:
            over = exc.problems[0].message
    verb = {"submit": "submit", "pickup": "pick up", "skip": "skip"}
    docs = []
    rows = []
    total, unknown_lines = submit_cost(plan, costs)
    unknown = len(unknown_lines)
    for line in plan.lines:
        est = costs[line.number]
        r = line.request
        docs.append({"line": line.number, "action": line.action, "provider": line.provider, "model": r.model,
                     "quality": r.quality, "output": str(line.output), "client_key": line.client_key,
                     "earlier_state": line.prior_state,
                     "usd": None if isinstance(est, KlingError) else est.usd,
                     "priced_on": None if isinstance(est, KlingError) else est.provider})
        priced = f" ({est.provider})" if "," in line.provider and not isinstance(est, KlingError) else ""
        rows.append((str(line.number), verb[line.action], line.provider, r.model, r.quality, usd_text(est) + priced,
                     str(line.output)))
    counts = {"submit": plan.count("submit"), "pickup": plan.count("pickup"), "skip": plan.count("skip")}
    cost_note = f"estimated cost of the submits: {format_usd(total)}" + (
        f" (+ {unknown} line(s) of unknown price)" if unknown else "")
    if as_json:
        doc: dict[str, Any] = {"lines": docs, "counts": counts, "usd": total,
                               "unknown_prices": unknown}
        if max_cost is not None:
            doc["max_cost"] = {"usd": max_cost, "within": over is None, "problem": over}
        click.echo(json.dumps(doc, indent=2))
        return 0 if over is None else 2
    header = ("line", "action", "provider", "model", "quality", "estimate", "output")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    click.echo(f"dry run of {plan.manifest}: {len(plan.lines)} lines, nothing submitted")
    for row in (header, *rows):
        click.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{counts['submit']} to submit, {counts['pickup']} to pick up, {counts['skip']} to skip; {cost_note}")
    if over is not None:
        raise ValidationError.single("max_cost", over)  # exit 2, as the real run would refuse it
    if max_cost is not None:
        click.echo(f"within --max-cost {format_usd(max_cost)}")
    return 0


@click.command("batch")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--concurrency", "-j", type=int, default=DEFAULT_CONCURRENCY, show_default=True,
              help=f"Jobs in flight at once across all providers (1–{MAX_CONCURRENCY}); each provider's own "
                   "limit (max_in_flight) applies too.")
@click.option("--provider", default=None, shell_complete=complete_providers,
              help="Provider for lines that name none (default: config's default_provider, else mock).")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the outputs of lines without `output` (default: <manifest stem>-outputs beside it).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Manifest format (default: by suffix, .csv or .jsonl, else by content).")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed line (started jobs stay in the job log).")
@click.option("--dry-run", is_flag=True,
              help="Check every line and print the plan (submit / pick up / skip) with cost estimates; submit nothing.")
@click.option("--max-cost", "max_cost_raw", default=None, metavar="USD",
              help="Refuse the batch, before any submit, if the lines to submit are estimated above this.")
@click.option("--timeout", "timeout_raw", default=None, metavar="SECONDS",
              help="Stop waiting for a job after this long (it keeps running; a re-run picks it up).")
@click.option("--json", "as_json", is_flag=True,
              help="Print each line's result as one JSON object per line on stdout (JSONL), as it finishes.")
@click.option("--results", "results_path", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Also write the results JSONL to PATH (each line flushed as it finishes).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output (the summary is still printed).")
@click.option("--webhooks", is_flag=True,
              help="Serve a webhook receiver ([webhooks] host, port, public_url) for the batch: jobs on hosts that "
                   "call back report there and wake their wait (checked and confirmed; polling goes on sparsely).")
@pass_state
@json_errors
def command(state: State, manifest: str, concurrency: int, provider: str | None, output_dir: str | None,
            fmt: str | None, fail_fast: bool, dry_run: bool, max_cost_raw: str | None, timeout_raw: str | None,
            as_json: bool, results_path: str | None, quiet: bool, webhooks: bool = False) -> int:
    """Run every edit of MANIFEST: a JSONL or CSV file, one edit per line with `kling edit`'s fields
    (video, prompt, images, elements, keep_audio, quality, model, edit_mode, aspect_ratio, duration,
    provider, output, options, client_key, webhook_url).

    Every line is checked first; any bad line and the whole batch is refused (exit 2), each
    problem named by line number and field, nothing submitted. Running the same command again
    resumes: lines saved by an earlier run are skipped, started jobs picked up, none submitted
    twice. Ctrl-C stops submitting; jobs started stay in the job log for the next run.

    Exit codes: 0 every line saved; 1 a line failed, was cancelled or did not run; 2 bad
    manifest or options; 130 interrupted.
    """
    problems = Problems()
    problems.take(check_concurrency, concurrency)
    timeout = problems.take(parse_timeout, timeout_raw)
    max_cost = problems.take(parse_max_cost, max_cost_raw)
    if problems:
        raise ValidationError(problems, subject="options")

    async def run() -> int:
        async with state.client(provider) as client:
            plan = load_plan(client, manifest, fmt=fmt, output_dir=output_dir, provider=provider)
            if dry_run:
                return print_plan(client, plan, as_json, max_cost)
            if max_cost is not None:
                check_budget(plan, estimates(client, plan.lines), max_cost)
            if webhooks:  # docs/webhooks.md
                from kling_core.webhooks import serve_webhooks
                from kling_core.webhooks.batch import with_webhooks

                async with serve_webhooks(client) as running:
                    plan, count = with_webhooks(plan, running, client)
                    where = "" if client.config.webhooks.public_url else (
                        "; hosts on the internet cannot reach it: set [webhooks] public_url to a tunnel")
                    click.echo(f"webhooks: {count} line(s) report to {running.base_url}{where}", err=True)
                    return await execute(client, plan, concurrency=concurrency, fail_fast=fail_fast, timeout=timeout,
                                         as_json=as_json, results_path=results_path, quiet=quiet)
            return await execute(client, plan, concurrency=concurrency, fail_fast=fail_fast, timeout=timeout,
                                 as_json=as_json, results_path=results_path, quiet=quiet)

    return asyncio.run(run())


def open_results(raw: str, plan: BatchPlan) -> ResultsFile:
    """The results file, refused (exit 2, before any submit) where writing it would destroy the
    manifest, an input or a line's output, or where it cannot be written."""
    path = Path(raw).expanduser().resolve()
    taken = {plan.manifest.resolve(): "the manifest"}
    for line in plan.lines:
        taken.setdefault(line.output.resolve(), f"the output of line {line.number}")
        for _field, ref in line.request.media():
            local = local_path(ref)
            if local is not None:
                taken.setdefault(local.expanduser().resolve(), f"an input of line {line.number}")
    what = taken.get(path)
    if what is not None:
        raise ValidationError.single("results", f"{raw} is {what}; give the results another file")
    try:
        return ResultsFile(path)
    except OSError as exc:
        raise ValidationError.single("results", f"{raw}: cannot write it ({exc.strerror or exc})") from None


async def execute(client: AsyncEditClient, plan: BatchPlan, *, concurrency: int, fail_fast: bool,
                  timeout: float | None, as_json: bool, results_path: str | None, quiet: bool) -> int:
    tally = Tally()
    results = open_results(results_path, plan) if results_path is not None else None
    code = 0
    with BatchProgress(len(plan.lines), enabled=not quiet) as progress:
        try:
            async with contextlib.aclosing(run_plan(client, plan, concurrency=concurrency, fail_fast=fail_fast,
                                                    events=progress, timeout=timeout)) as running:
                async for result in running:
                    tally.add(result)
                    progress.finished(result)
                    if results is not None:
                        results.write(result)
                    if as_json:
                        click.echo(json.dumps(result.to_document(), sort_keys=True))
        except asyncio.CancelledError:
            progress.interrupted()
            code = INTERRUPTED
        except BrokenPipeError:  # `kling batch --json | head`: stop as Ctrl-C does, and say so
            progress.interrupted()
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            code = STDOUT_CLOSED
        finally:
            if results is not None:
                results.close()
    for text in summary_lines(tally, planned=len(plan.lines)):
        click.echo(text, err=True)
    if code == STDOUT_CLOSED:
        click.echo(f"stopped: the output's reader went away (stdout closed); {len(plan.lines) - tally.total} "
                   f"line(s) not finished, the jobs started stay in the job log.\n  {RESUME_HINT}", err=True)
        return 1
    if code == INTERRUPTED:
        left = len(plan.lines) - tally.total
        click.echo(f"interrupted: {left} line(s) not finished; no new job was submitted after Ctrl-C, and the "
                   f"jobs started stay in the job log (`kling jobs --state unfinished`).\n  {RESUME_HINT}", err=True)
        return INTERRUPTED
    if tally.problems:
        click.echo(f"{len(tally.problems)} line(s) not saved; {RESUME_HINT} (a line that failed on the host is "
                   "skipped until its content changes or `kling jobs forget KEY` drops its job)", err=True)
        return 1
    return code
