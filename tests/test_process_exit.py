"""The `kling` process's end: its job log is closed (no WAL left), and only a whole process
leaves its settled objects out of garbage collection."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from media_fixtures import sample

from kling_core.cli.common import State
from kling_core.media import SampleMedia

__all__ = ["sample"]


def test_settled_freezes_only_a_whole_process(monkeypatch: pytest.MonkeyPatch) -> None:
    before = gc.get_freeze_count()
    State.settled()  # called from Python (as here): nothing frozen
    assert gc.get_freeze_count() == before
    monkeypatch.setattr(State, "whole_process", True)
    try:
        State.settled()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def _kling(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KLING_PLUGINS": "mock"}
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=120)


@pytest.mark.ffmpeg
def test_an_edit_process_closes_its_job_log(sample: SampleMedia, tmp_path: Path) -> None:
    done = _kling(["edit", str(sample.video), "--prompt", "night", "--provider", "mock", "--new", "--quiet",
                   "--quality", "std", "-o", str(tmp_path / "out.mp4")], tmp_path)
    assert done.returncode == 0, done.stderr
    state = Path(os.environ["KLING_STATE_DIR"])
    assert sorted(p.name for p in state.iterdir() if p.name.startswith("jobs.db")) == ["jobs.db"]
    assert (tmp_path / "out.mp4").stat().st_size > 0
    done = _kling(["cache", "prune", "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in state.iterdir() if p.name.startswith("jobs.db")) == ["jobs.db"]
