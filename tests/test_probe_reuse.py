"""A file probed before and unchanged since is not opened again; any change is probed afresh."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from media_fixtures import sample

from kling_core.media import SampleMedia, probe
from kling_core.media.probe import probe_video
from kling_core.verify import verify_video

__all__ = ["sample"]

pytestmark = pytest.mark.ffmpeg


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files PyAV opens from now on."""
    opened: list[str] = []
    real = probe._open

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(probe, "_open", counted)
    monkeypatch.setattr(probe, "_PROBED", type(probe._PROBED)())  # nothing remembered yet
    return opened


def test_an_unchanged_file_is_probed_once(sample: SampleMedia, tmp_path: Path, opens: list[str]) -> None:
    clip = Path(shutil.copy(sample.video, tmp_path / "clip.mp4"))
    first = probe_video(clip, decode=False)
    assert probe_video(clip, decode=False) == first
    assert opens == ["clip.mp4"]
    # A decoded frame was not proven yet: opened again, and that answer serves both kinds.
    assert probe_video(clip) == first
    assert probe_video(clip) == probe_video(clip, decode=False) == first
    assert opens == ["clip.mp4", "clip.mp4"]


def test_a_changed_or_replaced_file_is_probed_again(sample: SampleMedia, tmp_path: Path, opens: list[str]) -> None:
    clip = Path(shutil.copy(sample.video, tmp_path / "clip.mp4"))
    probe_video(clip)
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns))  # same times set back: ctime moves
    probe_video(clip)
    shutil.copy(sample.video, tmp_path / "other.mp4")
    os.replace(tmp_path / "other.mp4", clip)  # same bytes, another file
    probe_video(clip)
    assert opens == ["clip.mp4"] * 3
    with open(clip, "r+b") as fh:  # damaged in place
        fh.truncate(100)
    with pytest.raises(Exception, match="not a readable video"):
        probe_video(clip)


def test_verification_always_reads_the_file(sample: SampleMedia, tmp_path: Path, opens: list[str]) -> None:
    clip = Path(shutil.copy(sample.video, tmp_path / "clip.mp4"))
    probe_video(clip)
    verify_video(clip, expect_duration=None, job="mock job m")
    verify_video(clip, expect_duration=None, job="mock job m")
    assert opens == ["clip.mp4"] * 3
