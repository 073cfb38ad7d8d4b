"""`kling --help` start-up vs `python -c pass`, both as whole processes; and what the pytest
plugin adds to a pytest run that does not use it.

Run: python benchmarks/bench_startup.py [--reps N] [--pytest-reps N] [--check]

Both commands run with this interpreter (the `kling` script installed beside it), alternating,
each once as a warm-up (page cache, bytecode) and then N times; the medians are compared.
Bytecode is cached as in an installed package (PYTHONDONTWRITEBYTECODE is dropped, the cache
goes to a temporary PYTHONPYCACHEPREFIX), so the figure is what a user's machine sees. The figure
the target is about is `kling --help`'s own wall time; the ratio to `python -c pass` says how
much of it is the interpreter's own start-up on this machine.
Target: `kling --help` under 150 ms.

The second pair runs pytest on one empty test in a temporary folder, with the kling plugin (as
every pytest run in an environment with kling-core installed has it) and with `-p no:kling`;
the difference is what the plugin costs a run that uses none of its fixtures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import child_env, kling_script

TARGET_MS = 150.0


def time_run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def pytest_pair(root: Path, env: dict[str, str], reps: int) -> tuple[list[float], list[float]]:
    """pytest on one empty test, with and without the kling plugin: (with, without) wall times."""
    if reps <= 0:
        return [], []
    folder = root / "pytest-run"
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_empty.py").write_text("def test_nothing():\n    pass\n")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(folder / "pytest.ini"),
           str(folder / "test_empty.py")]
    without_cmd = [*cmd, "-p", "no:kling"]
    time_run(cmd, env), time_run(without_cmd, env)  # warm-up
    with_plugin, without = [], []
    for _ in range(reps):
        with_plugin.append(time_run(cmd, env))
        without.append(time_run(without_cmd, env))
    return with_plugin, without


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--pytest-reps", type=int, default=7, help="0 skips the pytest pair")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if `kling --help` takes {TARGET_MS:.0f} ms or more")
    args = parser.parse_args()
    baseline_cmd = [sys.executable, "-c", "pass"]
    help_cmd = [kling_script(), "--help"]
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        env = child_env(str(Path(tmp) / "pycache"))
        time_run(baseline_cmd, env), time_run(help_cmd, env)  # warm-up (writes the bytecode), not counted
        base, helps = [], []
        for _ in range(args.reps):
            base.append(time_run(baseline_cmd, env))
            helps.append(time_run(help_cmd, env))
        with_plugin, without = pytest_pair(Path(tmp), env, args.pytest_reps)
    b, h = statistics.median(base) * 1000, statistics.median(helps) * 1000
    met = h < TARGET_MS
    print(f"python -c pass : median {b:6.1f} ms  (min {min(base) * 1000:.1f}, max {max(base) * 1000:.1f}, {args.reps} runs)")
    print(f"kling --help   : median {h:6.1f} ms  (min {min(helps) * 1000:.1f}, max {max(helps) * 1000:.1f}, {args.reps} runs)")
    print(f"ratio          : {h / b:.2f}x python -c pass; kling --help - python -c pass = {h - b:.1f} ms")
    print(f"target         : kling --help < {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}")
    if with_plugin and without:
        w, wo = statistics.median(with_plugin) * 1000, statistics.median(without) * 1000
        print(f"pytest, 1 test : median {w:6.1f} ms with the kling plugin, {wo:6.1f} ms with -p no:kling "
              f"({w - wo:+.1f} ms, {args.pytest_reps} runs each)")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
