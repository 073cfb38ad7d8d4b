"""``kling emulate --render sample`` as its own process, for the benchmarks that load it.

Started on 127.0.0.1 at a free port (queue and run 0.2 s each, from a settings file) in its own
process group, so a Ctrl-C of the benchmark is the benchmark's and the emulator is stopped on
purpose; its stdout (the URLs, one JSON line) and log go to files, never a pipe that can fill.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from _process import status_kib

SETTINGS = 'render = "sample"\nqueue_seconds = 0.2\nrun_seconds = 0.2\n'


class EmulatorProcess:
    """``kling emulate`` serving ``hosts`` (comma-separated), its files under ``root``."""

    def __init__(self, root: Path, hosts: str, state: Path | None = None) -> None:
        settings = root / "emulator.toml"
        settings.write_text(SETTINGS)
        self.out_path, self.log_path = root / "emulator.out", root / "emulator.log"
        argv = [sys.executable, "-m", "kling_core", "emulate", "--bind", "127.0.0.1", "--port", "0", "--hosts", hosts,
                "--render", "sample", "--json", "--settings", str(settings), "--state", str(state or root / "state")]
        with self.out_path.open("wb") as out, self.log_path.open("wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def urls(self, timeout: float = 60.0) -> dict[str, str]:
        """host -> base URL, once the emulator has printed them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kling emulate exited ({self.proc.returncode}):\n"
                                   f"{self.log_path.read_text()[-2000:]}")
            text = self.out_path.read_text()
            if "\n" in text:
                urls: dict[str, str] = json.loads(text.split("\n", 1)[0])
                return urls
            time.sleep(0.05)
        raise RuntimeError("kling emulate printed no URLs in time")

    def count(self, pattern: re.Pattern[str]) -> int:
        """Log lines matching ``pattern`` (one line per request)."""
        with self.log_path.open(errors="replace") as fh:
            return sum(1 for line in fh if pattern.search(line))

    def log_problems(self) -> tuple[int, int]:
        """(log lines with a 5xx status, lines mentioning a traceback)."""
        return self.count(re.compile(r'" 5\d\d ')), self.count(re.compile("Traceback"))

    def peak_rss_kib(self) -> int:
        return status_kib("VmHWM", self.proc.pid)

    def stop(self) -> None:
        """SIGINT, then SIGKILL to the group after 15 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
