"""Which writes are fsynced: the output and the durable records, not scratch files. Counted."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from media_fixtures import sample

from kling_core.cli import main
from kling_core.files import write_text_atomic
from kling_core.media import SampleMedia

__all__ = ["sample"]


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every file or folder fsynced from now on (Linux: read from /proc)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")


def test_a_durable_write_syncs_file_and_folder_and_a_scratch_write_neither(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    synced = _record_fsyncs(monkeypatch)
    write_text_atomic(tmp_path / "a.json", "1")
    assert synced == [str(tmp_path / synced[0].rsplit("/", 1)[1]), str(tmp_path)]
    assert synced[0].endswith(".part")  # the temporary file, before its rename
    synced.clear()
    write_text_atomic(tmp_path / "a.json", "2", durable=False)
    assert synced == []
    assert (tmp_path / "a.json").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # still atomic: no temporary left


@pytest.mark.ffmpeg
def test_a_mock_edit_syncs_the_output_and_the_jobs_first_and_last_record_only(
    sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    synced = _record_fsyncs(monkeypatch)
    out = tmp_path / "out.mp4"
    with pytest.raises(SystemExit) as done:
        main(["edit", str(sample.video), "--prompt", "night", "--provider", "mock", "--new", "--quiet",
              "--quality", "std", "-o", str(out)])
    assert done.value.code == 0, capsys.readouterr().err
    # Left out: the ffmpeg proof remembered in the cache folder, written once per binary.
    files = [Path(p).name for p in synced if not Path(p).is_dir() and ".ffmpeg-checked.json." not in p]
    # The job log syncs through SQLite (fdatasync), not os.fsync: not counted here.
    records = [f for f in files if f.startswith(".job.json.")]
    outputs = [f for f in files if f.startswith(".out.mp4.")]
    assert len(records) == 2, files  # queued (the host took the job) and succeeded
    assert len(outputs) == 1, files  # the verified copy, before it takes the output's name
    assert len(files) == 3, files  # nothing else: not the render, not the progress records
    assert str(tmp_path) in synced  # the output's rename made durable
