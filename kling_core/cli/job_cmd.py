"""Job commands: edit, status, result, cancel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click

from kling_core.cli.common import State
from kling_core.cli.progress import JobProgress, describe
from kling_core.client import AsyncEditClient
from kling_core.contract.models import ASPECT_RATIOS, EDIT_MODES, MODELS, QUALITIES, EditResult
from kling_core.contract.status import Succeeded
from kling_core.errors import Problem, ValidationError
from kling_core.provider import JobHandle
from kling_core.serialization import unstructure

pass_state = click.make_pass_decorator(State)
INTERRUPTED = 130


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


def default_output(video: str) -> Path:
    stem = Path(unquote(urlparse(video).path)).stem if "://" in video else Path(video).stem
    base = Path.cwd() / f"{stem or 'video'}-edited.mp4"
    n = 2
    while base.exists():
        base = Path.cwd() / f"{stem or 'video'}-edited-{n}.mp4"
        n += 1
    return base


def check_output(path: Path) -> Path:
    if path.suffix.lower() != ".mp4":
        raise ValidationError.single("output", f"{path} must end in .mp4")
    if path.is_dir():
        raise ValidationError.single("output", f"{path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ValidationError.single("output", f"{parent} is not a directory")
    return path


def emit_result(result: EditResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(unstructure(result), indent=2))
    else:
        click.echo(result.video.path or result.video.url)


async def _interrupted(client: AsyncEditClient, handle: JobHandle | None, provider: str, client_key: str | None) -> int:
    """Ctrl-C: cancel where the host can; otherwise say how to pick the job up again."""
    if handle is None:
        key = f" (client key {client_key})" if client_key else ""
        click.echo(f"interrupted while submitting: the job may or may not exist on {provider}{key}; "
                   "it was not resubmitted", err=True)
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
    click.echo(
        f"interrupted: {handle.provider} job {handle.job_id} may still be running.\n"
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
@click.option("--aspect-ratio", type=click.Choice(ASPECT_RATIOS), default=None, help="Only where a model accepts it.")
@click.option("--duration", type=int, default=None, help="Seconds; only where a model accepts it.")
@click.option("--webhook", "webhook_url", default=None, help="URL the host calls when the job ends.")
@click.option("--client-key", default=None, help="Your id for this job; a repeat with the same key is not resubmitted.")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="Provider option; repeatable.")
@click.option("--provider", default=None, help="Provider name (default: config's default_provider, else mock).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .mp4 (default: <video>-edited.mp4 here).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--dry-run", is_flag=True, help="Validate and price on the host without creating a job.")
@click.option("--no-wait", is_flag=True, help="Submit, print the job, and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@pass_state
def edit(state: State, video: str, prompt: str, images: tuple[str, ...], elements: tuple[str, ...],
         keep_audio: bool | None, quality: str | None, model: str | None, edit_mode: str | None,
         aspect_ratio: str | None, duration: int | None, webhook_url: str | None, client_key: str | None,
         options: tuple[str, ...], provider: str | None, output: str | None, as_json: bool, dry_run: bool,
         no_wait: bool, quiet: bool) -> int:
    """Edit VIDEO (a local path or an http(s) URL) as the prompt says; write the output .mp4."""
    parsed_elements: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, spec in enumerate(elements):
        try:
            parsed_elements.append(parse_element(spec, i))
        except ValidationError as exc:
            problems += exc.problems
    opts: dict[str, Any] = {}
    for raw in options:
        try:
            k, v = parse_option(raw)
            opts[k] = v
        except ValidationError as exc:
            problems += exc.problems
    if problems:
        raise ValidationError(problems)
    out = check_output(Path(output)) if output else None

    async def run() -> int:
        async with state.client(provider) as client:
            request = client.request(
                video, prompt, images=images, elements=parsed_elements, model=model, quality=quality,
                keep_audio=keep_audio, edit_mode=edit_mode, aspect_ratio=aspect_ratio, duration=duration,
                webhook_url=webhook_url, client_key=client_key, options=opts, provider=provider,
            )
            prov = client.provider(provider)
            client.check(request, prov.name)
            if dry_run:
                click.echo(json.dumps(await prov.dry_run(request), indent=2))
                return 0
            dest = out or default_output(video)
            handle: JobHandle | None = None
            with JobProgress(enabled=not quiet) as progress:
                try:
                    handle = await client.submit(request, provider=prov.name)
                    progress.submitted(handle.job_id, handle.provider)
                    if no_wait:
                        click.echo(json.dumps(unstructure(handle), indent=2) if as_json else handle.job_id)
                        return 0
                    result = await client.wait(handle, on_status=progress.update)
                    result = await client.save(result, dest)
                except asyncio.CancelledError:
                    return await _interrupted(client, handle, prov.name, request.client_key)
            emit_result(result, as_json)
            return 0

    return asyncio.run(run())


@click.command("status")
@click.argument("provider")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_state
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

    asyncio.run(run())


@click.command("result")
@click.argument("provider")
@click.argument("job_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .mp4.")
@click.option("--wait/--no-wait", default=True, help="Wait for a job still running (default) or exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@pass_state
def result(state: State, provider: str, job_id: str, output: str, wait: bool, as_json: bool, quiet: bool) -> int:
    """Fetch a job's output video (waiting for it unless --no-wait)."""
    dest = check_output(Path(output))

    async def run() -> int:
        async with state.client(provider) as client:
            handle = client.handle(provider, job_id)
            with JobProgress(enabled=not quiet) as progress:
                if wait:
                    res = await client.wait(handle, on_status=progress.update)
                else:
                    st = await client.status(handle)
                    if not isinstance(st, Succeeded):
                        raise ValidationError([Problem("job_id", f"job {job_id} is {describe(st)}, not succeeded")])
                    res = st.result
                res = await client.save(res, dest)
            emit_result(res, as_json)
            return 0

    return asyncio.run(run())


@click.command("cancel")
@click.argument("provider")
@click.argument("job_id")
@pass_state
def cancel(state: State, provider: str, job_id: str) -> int:
    """Ask the host to cancel a job (where it can)."""

    async def run() -> int:
        async with state.client(provider) as client:
            if await client.cancel(client.handle(provider, job_id)):
                click.echo(f"cancellation requested for {provider} job {job_id}")
                return 0
            click.echo(f"{provider} job {job_id} could not be cancelled (it may have finished)", err=True)
            return 1

    return asyncio.run(run())


commands = [edit, status, result, cancel]
