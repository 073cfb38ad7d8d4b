"""``kling compare INPUT OUTPUT -o sheet.png``: a contact sheet of an edit (see media/sheet.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from kling_core.cli.common import State
from kling_core.errors import Problem, ValidationError
from kling_core.joblog import JobLog, JobRecord
from kling_core.media.locate import require_ffmpeg
from kling_core.media.sheet import MAX_FRAMES, Sheet, render_sheet
from kling_core.outputs import check_output

pass_state = click.make_pass_decorator(State)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SETTINGS = ("model", "quality", "edit_mode", "keep_audio", "aspect_ratio", "duration")


def record_for(journal: JobLog | None, output: str | Path) -> JobRecord | None:
    """The newest job in the log whose saved output is ``output`` (same resolved path)."""
    if journal is None or not journal.path.exists():
        return None
    target = Path(output).resolve()
    for record in journal.list(states=("saved",)):
        if record.output and Path(record.output).resolve() == target:
            return record
    return None


def caption_for(record: JobRecord | None, provider: str | None = None, request: Mapping[str, Any] | None = None) -> str:
    """``prompt`` on the first line; provider, model and the settings that were set on the second."""
    doc: Mapping[str, Any] = request if request is not None else (record.request or {}) if record else {}
    if isinstance(doc.get("request"), Mapping):
        doc = doc["request"]
    prov = provider or (record.provider if record else None)
    settings = [f"{k}={doc[k]}" for k in _SETTINGS if doc.get(k) is not None]
    if record is not None and record.model and not doc.get("model"):
        settings.insert(0, f"model={record.model}")
    options = doc.get("options") or {}
    settings += [f"{k}={v}" for k, v in options.items()] if isinstance(options, Mapping) else []
    second = " · ".join(x for x in (f"provider={prov}" if prov else "", ", ".join(settings)) if x)
    prompt = str(doc.get("prompt") or "").strip()
    return "\n".join(x for x in (prompt, second) if x)


def check_local(field: str, ref: str) -> None:
    """compare reads local files only: a URL (``http://…``, which Path would mangle into
    ``http:/…``) is refused by name instead of reported as a missing file."""
    if _URL.match(ref):
        raise ValidationError.single(field, f"{ref} is a URL: kling compare takes local files (download it first)")


def check_sheet_path(path: str, inputs: list[str]) -> Path:
    if not path.lower().endswith(".png"):
        raise ValidationError.single("sheet", f"{path} must end in .png")
    try:
        return check_output(path, inputs=inputs)
    except ValidationError as exc:  # check_output names the field "output": here it is the sheet
        raise ValidationError([Problem("sheet", p.message) for p in exc.problems]) from None


def write_sheet(ffmpeg: str, source: str, edited: str, dest: Path, *, frames: int, caption: str) -> Sheet:
    sheet = asyncio.run(render_sheet(ffmpeg, source, edited, dest, frames=frames, caption=caption))
    return sheet


def report(sheet: Sheet) -> None:
    click.echo(str(sheet.path))
    if sheet.caption and not sheet.captioned:
        click.echo(f"caption (no font or drawtext, so not drawn): {sheet.caption}", err=True)


@click.command("compare")
@click.argument("input_video", metavar="INPUT", type=click.Path())
@click.argument("output_video", metavar="OUTPUT", type=click.Path())
@click.option("--output", "-o", "sheet_path", required=True, type=click.Path(), help="The sheet, a .png.")
@click.option("--frames", type=click.IntRange(1, MAX_FRAMES), default=4, show_default=True,
              help="Frames per video, evenly spaced through the shorter duration.")
@click.option("--caption", default=None, help="Caption text when the job log has no job saved to OUTPUT.")
@pass_state
def command(state: State, input_video: str, output_video: str, sheet_path: str, frames: int, caption: str | None) -> None:
    """Write a PNG contact sheet: INPUT's frames on the top row, OUTPUT's below, at the same times.

    The caption band shows the prompt, provider, model and settings of the job in `kling jobs`
    whose saved output is OUTPUT; with no such job, the --caption text (if any). INPUT and
    OUTPUT are local files (a URL is refused).
    """
    check_local("INPUT", input_video)
    check_local("OUTPUT", output_video)
    dest = check_sheet_path(sheet_path, [input_video, output_video])
    ffmpeg = require_ffmpeg(state.config.media)
    text = caption_for(record_for(JobLog(), output_video)) or (caption or "")
    report(write_sheet(ffmpeg, input_video, output_video, dest, frames=frames, caption=text))
