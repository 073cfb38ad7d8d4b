"""`kling --help` start-up vs `python -c pass`, both as whole processes.

Run: python benchmarks/bench_startup.py [--reps N] [--check]

Both commands run with this interpreter (the `kling` script installed beside it), alternating,
each once as a warm-up (page cache, bytecode) and then N times; the medians are compared.
Bytecode is cached as in an installed package (PYTHONDONTWRITEBYTECODE is dropped, the cache
goes to a temporary PYTHONPYCACHEPREFIX), so the figure is what a user's machine sees. The figure
the target is about is `kling --help`'s own wall time; the ratio to `python -c pass` says how
much of it is the interpreter's own start-up on this machine.
Target: `kling --help` under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 150.0


def kling_script() -> str:
    beside = Path(sys.executable).with_name("kling")
    found = str(beside) if beside.exists() else shutil.which("kling")
    if found is None:
        sys.exit("no `kling` script beside this interpreter or on PATH; pip install -e . first")
    return found


def time_run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def child_env(pycache: str) -> dict[str, str]:
    """Bytecode cached as an installed package has it (pip compiles at install), kept out of the
    source tree in ``pycache``; no KLING_* variable of the caller's (no logging set-up)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if `kling --help` takes {TARGET_MS:.0f} ms or more")
    args = parser.parse_args()
    baseline_cmd = [sys.executable, "-c", "pass"]
    help_cmd = [kling_script(), "--help"]
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        env = child_env(tmp)
        time_run(baseline_cmd, env), time_run(help_cmd, env)  # warm-up (writes the bytecode), not counted
        base, helps = [], []
        for _ in range(args.reps):
            base.append(time_run(baseline_cmd, env))
            helps.append(time_run(help_cmd, env))
    b, h = statistics.median(base) * 1000, statistics.median(helps) * 1000
    met = h < TARGET_MS
    print(f"python -c pass : median {b:6.1f} ms  (min {min(base) * 1000:.1f}, max {max(base) * 1000:.1f}, {args.reps} runs)")
    print(f"kling --help   : median {h:6.1f} ms  (min {min(helps) * 1000:.1f}, max {max(helps) * 1000:.1f}, {args.reps} runs)")
    print(f"ratio          : {h / b:.2f}x python -c pass; kling --help - python -c pass = {h - b:.1f} ms")
    print(f"target         : kling --help < {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
