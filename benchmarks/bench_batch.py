"""`kling batch` with 10,000 jobs against `kling emulate --render sample`, measured as whole processes.

Run: python benchmarks/bench_batch.py [--jobs 10000] [--concurrency 100] [--host fal] [--timeout 3600]

Starts ``kling emulate --render sample`` (every job gets the one ready-made clip; queue and run
0.2 s each, from a settings file) as its own process on 127.0.0.1, writes a manifest of
``--jobs`` lines (one URL input each: the sample render does not fetch inputs, each line its own
prompt and output) and a kling.toml pointing ``--host``'s provider at the emulator (polls from
0.2 s growing x1.5 to 2 s), then runs, each as a child process with its own state and cache:

- baseline: ``kling batch MANIFEST --dry-run`` (read, check and plan every line; nothing sent);
- the batch: ``kling batch MANIFEST --concurrency N --quiet --results results.jsonl``.

Printed for each: wall time, peak RSS (``ru_maxrss`` of the child from ``wait4``) and CPU
seconds; for the batch also jobs saved, jobs per second, submits and status requests per job
(counted in the emulator's request log), and the batch's peak memory and wall time as ratios of
the baseline's. The goal for the batch's peak memory is under 1 GiB. Outputs are removed at the
end (10,000 copies of the sample clip are about 1 GB); ``--keep`` keeps the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import mib
from emulator_process import EmulatorProcess

GIB = 1024 * 1024  # KiB
# What one status request looks like in each host's request log line.
STATUS = {"fal": re.compile(r'"GET /fal/[^"]*/requests/[^"/]+/status'),
          "kling": re.compile(r'"GET /kling/v1/videos/omni-video/[^"/]+"')}
SUBMIT = {"fal": re.compile(r'"POST /fal/fal-ai/kling-video/[^"]*" 200'),
          "kling": re.compile(r'"POST /kling/v1/videos/omni-video" 200')}


def config(host: str, url: str) -> str:
    lines = ['[media]', 'allow_private_urls = true', '', f'[providers.{host}]', f'base_url = "{url}"']
    if host == "fal":
        lines += ['[providers.fal.options]', f'storage_url = "{url}/rest"', f'cdn_url = "{url}/cdn"']
    lines += [f'[providers.{host}.poll]', 'initial = 0.2', 'factor = 1.5', 'max = 2.0']
    return "\n".join(lines) + "\n"


def environ(host: str, work: Path) -> dict[str, str]:
    keys = {"fal": {"FAL_KEY": "bench-key:bench-secret"},
            "kling": {"KLING_ACCESS_KEY": "bench-access", "KLING_SECRET_KEY": "bench-secret-0123456789abcdef"}}
    return {**os.environ, **keys[host], "KLING_CONFIG_DIR": str(work / "user-config"),
            "KLING_STATE_DIR": str(work / "state"), "KLING_CACHE_DIR": str(work / "cache")}


def run_child(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run a child to its end; its wall time, exit code and own rusage (peak RSS, CPU)."""
    started = time.monotonic()
    with (cwd / "child.out").open("wb") as out, (cwd / "child.err").open("wb") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.monotonic() - started, "code": proc.returncode, "maxrss_kib": usage.ru_maxrss,
            "cpu": usage.ru_utime + usage.ru_stime, "stderr": (cwd / "child.err").read_text(errors="replace")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--host", choices=sorted(STATUS), default="fal")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds the batch may take at most")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kling-bench-batch-"))
    emulator = EmulatorProcess(work, args.host, state=work / "emulator")
    try:
        url = emulator.urls()[args.host]
        (work / "kling.toml").write_text(f'default_provider = "{args.host}"\n' + config(args.host, url))
        video = f"{url}/inputs/clip.mp4"  # never fetched by the sample render
        manifest = work / "edits.jsonl"
        with manifest.open("w") as fh:
            for i in range(args.jobs):
                fh.write(json.dumps({"video": video, "prompt": f"edit number {i}", "quality": "std",
                                     "output": f"out/{i:05d}.mp4"}) + "\n")
        env = environ(args.host, work)
        kling = [sys.executable, "-m", "kling_core", "batch", str(manifest)]

        base = run_child([*kling, "--dry-run"], work, env, args.timeout)
        if base["code"] != 0:
            print(base["stderr"][-3000:], file=sys.stderr)
            raise SystemExit(f"baseline (--dry-run) exited {base['code']}")
        print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min) on {os.cpu_count()} cores")
        run = run_child([*kling, "--concurrency", str(args.concurrency), "--quiet", "--results", "results.jsonl"],
                        work, env, args.timeout)
        results = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()] \
            if (work / "results.jsonl").is_file() else []
        saved = sum(1 for r in results if r["state"] == "saved")
        submits = emulator.count(SUBMIT[args.host])
        polls = emulator.count(STATUS[args.host])

        print(f"kling batch, {args.jobs} jobs on {args.host} (emulator, render=sample), --concurrency "
              f"{args.concurrency}")
        print(f"  baseline  kling batch --dry-run: {base['seconds']:.1f} s wall, peak RSS {mib(base['maxrss_kib'])}, "
              f"{base['cpu']:.1f} s CPU")
        print(f"  batch     exit {run['code']}: {run['seconds']:.1f} s wall, peak RSS {mib(run['maxrss_kib'])} "
              f"({run['maxrss_kib'] / base['maxrss_kib']:.2f}x baseline; goal < 1 GiB: "
              f"{'met' if run['maxrss_kib'] < GIB else 'NOT met'}), {run['cpu']:.1f} s CPU")
        print(f"  jobs      {saved} saved of {args.jobs}; {saved / run['seconds']:.1f} jobs/s; wall "
              f"{run['seconds'] / base['seconds']:.1f}x the baseline's")
        print(f"  requests  {submits} submits ({submits / max(1, args.jobs):.3f} per job), {polls} status requests "
              f"({polls / max(1, saved):.2f} per saved job)")
        if run["code"] != 0:
            print(run["stderr"][-3000:], file=sys.stderr)
        return 0 if run["code"] == 0 and saved == args.jobs and submits == args.jobs else 1
    finally:
        emulator.stop()
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2)
    sys.exit(main())
