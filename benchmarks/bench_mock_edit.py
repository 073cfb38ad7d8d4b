"""`kling edit` through the mock vs the plain ffmpeg command doing the same decode, scale and encode.

Run: python benchmarks/bench_mock_edit.py [--quality std|pro] [--reps N] [--check]

Input: a generated 5 s 1280x720 24 fps clip with a tone, plus one reference image. The mock
edit is the whole `kling edit ... --provider mock` process (start-up, imports, config, checks,
probing, the job log, submit, render, polling, the copy to the output .mp4); the baseline is one
ffmpeg process with the same encoder settings scaling to the same output size, without the
mock's grade and tile. Both run as whole processes, alternating, in the same run; the medians
are compared. A third process shows the floor under any Python front end of this kind: the
interpreter importing only what such a tool cannot do without (asyncio, sqlite3 for a job log,
PyAV for probing), then running the plain command as a child; the distance from that floor is
kling-core's own start-up and bookkeeping.
Target: `kling edit` through the mock takes at most 1.25x the plain command at 720p (std).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import child_env, kling_script
from kling_core_plugins.mock.render import AUDIO_CODEC_ARGS, VIDEO_CODEC_ARGS

from kling_core.media import find_ffmpeg, make_sample

TARGET = 1.25
OUTPUT_SIZE = {"std": "1280:720", "pro": "1920:1080"}  # the mock's output for a 16:9 input


def plain_argv(ffmpeg: str, clip: Path, out: Path, quality: str) -> list[str]:
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "2", "-i", str(clip),
        "-vf", f"scale={OUTPUT_SIZE[quality]}", *VIDEO_CODEC_ARGS, *AUDIO_CODEC_ARGS, "-movflags", "+faststart",
        str(out),
    ]


FLOOR_IMPORTS = "asyncio, sqlite3, subprocess, sys, av"


def floor_argv(plain: list[str]) -> list[str]:
    """The plain command run by a Python process that first imports the unavoidable modules."""
    code = f"import {FLOOR_IMPORTS}; subprocess.run(sys.argv[1:], check=True)"
    return [sys.executable, "-c", code, *plain]


def kling_argv(clip: Path, image: Path, out: Path, quality: str) -> list[str]:
    return [
        kling_script(), "edit", str(clip), "--prompt", "Regrade the scene after @Image1", "--image", str(image),
        "--keep-audio", "--quality", quality, "--provider", "mock", "--new", "--quiet", "--output", str(out),
    ]


def _children_cpu() -> float:
    """CPU seconds of finished child processes so far (steadier than wall time on a busy machine)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def time_run(argv: list[str], env: dict[str, str], cwd: Path, out: Path) -> tuple[float, float]:
    out.unlink(missing_ok=True)
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if not out.is_file():
        sys.exit(f"{argv[0]} wrote no {out}")
    return wall, _children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", choices=sorted(OUTPUT_SIZE), default="std", help="std (720p, default) or pro (1080p)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the wall ratio is above {TARGET}")
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        root = Path(tmp)
        sample = make_sample(root / "in", duration=5.0, size=(1280, 720), fps=24, images=1)
        # The edit's own state, cache and (empty) user config, so nothing of the user's is read or kept.
        env = child_env(str(root / "pycache"))
        for name in ("KLING_STATE_DIR", "KLING_CACHE_DIR", "KLING_CONFIG_DIR"):
            (root / name).mkdir()
            env[name] = str(root / name)
        plain_out, mock_out = root / "plain.mp4", root / "mock.mp4"
        plain_cmd = plain_argv(ffmpeg, sample.video, plain_out, args.quality)
        mock_cmd = kling_argv(sample.video, sample.images[0], mock_out, args.quality)
        floor_cmd = floor_argv(plain_cmd)
        # One warm-up of each (page cache, bytecode), not counted.
        time_run(plain_cmd, env, root, plain_out)
        time_run(floor_cmd, env, root, plain_out)
        time_run(mock_cmd, env, root, mock_out)
        plain, floor, mock = [], [], []
        for _ in range(args.reps):
            plain.append(time_run(plain_cmd, env, root, plain_out))
            floor.append(time_run(floor_cmd, env, root, plain_out))
            mock.append(time_run(mock_cmd, env, root, mock_out))
    p, m = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in mock)
    f, fc = statistics.median(w for w, _ in floor), statistics.median(c for _, c in floor)
    pc, mc = statistics.median(c for _, c in plain), statistics.median(c for _, c in mock)
    ratio = m / p
    size = OUTPUT_SIZE[args.quality].replace(":", "x")
    print(f"input: 5 s 1280x720 24 fps H.264 + AAC, one reference image; output {args.quality} ({size}), audio kept")
    print(f"plain ffmpeg : median {p:.3f} s wall, {pc:.3f} s cpu  (wall runs: {', '.join(f'{w:.3f}' for w, _ in plain)})")
    print(f"python floor : median {f:.3f} s wall, {fc:.3f} s cpu  ({f / p:.2f}x wall, {fc / pc:.2f}x cpu: "
          f"python -c 'import {FLOOR_IMPORTS}' running the plain command)")
    print(f"kling edit   : median {m:.3f} s wall, {mc:.3f} s cpu  (wall runs: {', '.join(f'{w:.3f}' for w, _ in mock)})")
    verdict = "met" if ratio <= TARGET else "NOT met"
    target = f"target <= {TARGET}x wall at std: {verdict}" if args.quality == "std" else "no target at pro"
    print(f"ratio        : {ratio:.2f}x wall, {mc / pc:.2f}x cpu  ({target}); "
          f"{m / f:.2f}x the python floor's wall")
    print("mock cmd     : " + " ".join(["kling", *mock_cmd[1:]]).replace(tmp, "$TMP"))
    print("baseline cmd : " + " ".join(["ffmpeg", *plain_cmd[1:]]).replace(tmp, "$TMP"))
    return 1 if args.check and args.quality == "std" and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
