"""docs/testing-your-app.md's examples run exactly as written, as a test module of their own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.ffmpeg
def test_testing_your_app_examples_pass(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "testing-your-app.md").read_text("utf-8")
    blocks = re.findall(r"^```py\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) == 3
    (tmp_path / "test_my_app.py").write_text("\n\n".join(blocks))
    env = {**os.environ, "KLING_CONFIG_DIR": str(tmp_path / "cfg"), "KLING_STATE_DIR": str(tmp_path / "state"),
           "KLING_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "-W", "ignore::DeprecationWarning", "test_my_app.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # All five: our client, fal-client, and plain requests (in the test extra).
    assert "5 passed" in done.stdout, done.stdout[-2000:]
