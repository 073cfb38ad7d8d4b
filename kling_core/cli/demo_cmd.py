"""``kling demo``: generate a sample clip and two reference images, then edit them offline.

Everything runs locally through the public client and the ``mock`` provider, so it needs no
key and no network: a quick way to see the whole pipeline (checks, submit, progress, save).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from kling_core.cli.common import State
from kling_core.cli.job_cmd import json_errors
from kling_core.cli.progress import JobProgress
from kling_core.contract.models import QUALITIES, EditResult, Quality
from kling_core.errors import ValidationError
from kling_core.media.samples import make_sample
from kling_core.serialization import unstructure

pass_state = click.make_pass_decorator(State)

DEMO_PROMPT = "Regrade the scene in the colours of @Image1 and keep @Element1 in view"


def _summary(result: EditResult) -> list[str]:
    lines = [f"result:  {result.video.path or result.video.url}", f"job:     mock {result.job_id}"]
    report: dict[str, Any] = dict(result.report or {})
    grade = report.get("grade") or {}
    if grade:
        lines.append(f"grade:   hue +{grade.get('hue_degrees')}°, saturation ×{grade.get('saturation')}")
    for tile in report.get("tiles") or []:
        lines.append(f"tile:    {tile['ref']} ({tile['source']}) at {tile['slot']} x={tile['x']} y={tile['y']} size={tile['size']}")
    out = report.get("output") or {}
    if out:
        lines.append(
            f"output:  {out.get('width')}x{out.get('height')} {out.get('fps')} fps, "
            f"{float(out.get('duration') or 0):.2f} s, {out.get('size_bytes')} bytes"
        )
    audio = report.get("audio") or {}
    if audio:
        lines.append(f"audio:   {'kept (' + str(audio.get('codec')) + ')' if audio.get('kept') else 'none'}")
    return lines


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="kling-demo", show_default=True,
              help="Folder for the sample media and the edited clip.")
@click.option("--quality", type=click.Choice(QUALITIES), default="std", show_default=True,
              help="std (720p) or pro (1080p).")
@click.option("--duration", type=click.FloatRange(3.0, 10.0), default=3.2, show_default=True,
              help="Length of the generated clip, seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@pass_state
@json_errors
def command(state: State, directory: str, quality: Quality, duration: float, as_json: bool, quiet: bool) -> int:
    """Make a sample clip (motion + tone) and two images, then edit them with the offline mock."""
    folder = Path(directory).expanduser().resolve()
    if folder.exists() and not folder.is_dir():  # click checks too; this covers a race
        raise ValidationError.single("dir", f"{folder} is not a directory")

    def log(text: str) -> None:
        if not quiet:
            click.echo(text, err=True)

    # The config and the mock provider first, so a bad config writes no sample media (the
    # mock holds nothing to release if the sample then fails).
    client = state.client("mock")
    client.provider("mock")
    log(f"generating sample media in {folder} …")
    sample = make_sample(folder, duration=duration, size=(1280, 720), fps=24, images=2)
    image, frontal = sample.images
    log(f"video:   {sample.video}")
    log(f"@Image1: {image}")
    log(f"@Element1: {frontal} (frontal and reference image)")
    output = folder / "edited.mp4"

    async def run() -> EditResult:
        async with client:
            request = client.request(
                str(sample.video),
                DEMO_PROMPT,
                images=[str(image)],
                elements=[{"frontal_image": str(frontal), "reference_images": [str(frontal)]}],
                keep_audio=True,
                quality=quality,
                provider="mock",
            )
            log(f"prompt:  {request.prompt}")
            with JobProgress(enabled=not quiet) as progress:
                return await client.edit(
                    request,
                    output=output,
                    provider="mock",
                    on_submit=lambda h: progress.submitted(h.job_id, h.provider),
                    on_status=progress.update,
                )

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(unstructure(result), indent=2))
    else:
        click.echo("\n".join(_summary(result)))
    return 0
