"""Process helpers the benchmarks share: the installed ``kling`` script, a clean environment for it, memory figures."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def kling_script() -> str:
    """The ``kling`` script beside this interpreter, else the one on PATH; exits if there is none."""
    beside = Path(sys.executable).with_name("kling")
    found = str(beside) if beside.exists() else shutil.which("kling")
    if found is None:
        sys.exit("no `kling` script beside this interpreter or on PATH; pip install -e . first")
    return found


def child_env(pycache: str) -> dict[str, str]:
    """Bytecode cached as an installed package has it (pip compiles at install), kept out of the
    source tree in ``pycache``; no KLING_* variable of the caller's (no logging set-up)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def status_kib(field: str, pid: int | str = "self") -> int:
    """A memory figure of ``/proc/PID/status`` in KiB (VmHWM: peak RSS, VmRSS: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"
