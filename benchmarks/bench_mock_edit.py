"""Mock edit vs the plain ffmpeg command doing the same decode, scale and encode.

Run: python benchmarks/bench_mock_edit.py [--reps N] [--check]

Input: a generated 5 s 1280x720 24 fps clip with a tone, plus one reference image. The mock
edit goes through the public client (checks, prepare, probe, submit, poll, save to an .mp4);
the baseline is one ffmpeg run with the same encoder settings and no whitelists, grade or
tile. Both are timed in the same run, alternating, and the medians compared.
Target: the whole mock edit takes at most 1.2× the plain command.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kling_core_plugins.mock.render import AUDIO_CODEC_ARGS, VIDEO_CODEC_ARGS

from kling_core.client import AsyncEditClient
from kling_core.config import KlingConfig
from kling_core.media import find_ffmpeg, make_sample
from kling_core.settings import MediaSettings, ProviderSettings

TARGET = 1.2


def plain_argv(ffmpeg: str, clip: Path, out: Path) -> list[str]:
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "2", "-i", str(clip),
        "-vf", "scale=1280:720", *VIDEO_CODEC_ARGS, *AUDIO_CODEC_ARGS, "-movflags", "+faststart", str(out),
    ]


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children (steadier than wall
    time on a busy machine)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_plain(argv: list[str]) -> tuple[float, float]:
    cpu, started = _cpu(), time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started, _cpu() - cpu


def time_mock(work: Path, clip: Path, image: Path, out: Path) -> tuple[float, float]:
    config = KlingConfig(
        default_provider="mock",
        media=MediaSettings(work_dir=str(work)),
        providers={"mock": ProviderSettings()},
    )

    async def run() -> None:
        async with AsyncEditClient(config=config, use_journal=False) as client:
            request = client.request(
                str(clip), "Regrade the scene after @Image1", images=[str(image)], keep_audio=True, quality="std"
            )
            await client.edit(request, output=out)

    cpu, started = _cpu(), time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started, _cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio is above {TARGET}")
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        root = Path(tmp)
        sample = make_sample(root / "in", duration=5.0, size=(1280, 720), fps=24, images=1)
        plain_cmd = plain_argv(ffmpeg, sample.video, root / "plain.mp4")
        # One warm-up of each (page cache, imports), not counted.
        time_plain(plain_cmd)
        time_mock(root / "work", sample.video, sample.images[0], root / "mock.mp4")
        plain, mock = [], []
        for _ in range(args.reps):
            plain.append(time_plain(plain_cmd))
            mock.append(time_mock(root / "work", sample.video, sample.images[0], root / "mock.mp4"))
    p, m = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in mock)
    pc, mc = statistics.median(c for _, c in plain), statistics.median(c for _, c in mock)
    ratio = m / p
    print("input: 5 s 1280x720 24 fps H.264 + AAC, one reference image; output std (720p), audio kept")
    print(f"plain ffmpeg : median {p:.3f} s wall, {pc:.3f} s cpu  (wall runs: {', '.join(f'{w:.3f}' for w, _ in plain)})")
    print(f"mock edit    : median {m:.3f} s wall, {mc:.3f} s cpu  (wall runs: {', '.join(f'{w:.3f}' for w, _ in mock)})")
    print(f"ratio        : {ratio:.2f}x wall, {mc / pc:.2f}x cpu  (target <= {TARGET}x wall: {'met' if ratio <= TARGET else 'NOT met'})")
    print("baseline cmd : " + " ".join([*plain_cmd[:1], "...", *plain_cmd[5:]]).replace(tmp, "$TMP"))
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
