"""The installed ``kling`` script, for the benchmarks that time it as a whole process."""

from __future__ import annotations

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
