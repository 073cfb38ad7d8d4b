"""`kling demo` and `kling edit`/`status` on the mock, run as the CLI runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from media_fixtures import sample, short_clip

from kling_core.cli import main
from kling_core.media import SampleMedia, probe_video

__all__ = ["sample", "short_clip"]


@pytest.fixture(autouse=True)
def _only_first_party_mock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other installed plugins (possibly broken) must not change what these commands print.
    monkeypatch.setenv("KLING_PLUGINS", "mock")


def _kling(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.mark.ffmpeg
def test_demo_generates_media_and_edits_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _kling(["demo", "--dir", "demo", "--json"], capsys)
    assert code == 0, err
    folder = tmp_path / "demo"
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4", "edited.mp4", "image1.png", "image2.png"]
    result = json.loads(out)
    assert result["provider"] == "mock"
    assert result["video"]["path"] == str(folder / "edited.mp4")
    assert [t["ref"] for t in result["report"]["tiles"]] == ["@Image1", "@Element1"]
    edited = probe_video(folder / "edited.mp4")
    assert (edited.width, edited.height) == (1280, 720) and edited.has_audio
    assert "@Image1" in err and "submitted mock job" in err


def test_demo_refuses_a_file_as_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("x")
    code, _out, err = _kling(["demo", "--dir", "taken"], capsys)
    assert code == 2
    assert "'--dir'" in err and "is a file" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.ffmpeg
def test_edit_of_a_too_short_clip_exits_2_before_any_job(short_clip: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    code, _out, err = _kling(["edit", str(short_clip), "-p", "x", "--quality", "std", "-o", "out.mp4", "-q"], capsys)
    assert code == 2
    assert err.strip() == "error: video: 2.0 s long, at least 3 s"
    assert not (tmp_path / "out.mp4").exists()
    assert not (tmp_path / "cache" / "mock" / "jobs").exists()


@pytest.mark.ffmpeg
def test_edit_no_wait_then_status_from_a_new_invocation(sample: SampleMedia, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    code, out, err = _kling(["edit", str(sample.video), "-p", "night", "--quality", "std", "--no-wait", "-q",
                             "-O", "latency=0.2"], capsys)
    assert code == 0, err
    job_id = out.strip()
    assert job_id.startswith("mock-")
    job_dir = tmp_path / "cache" / "mock" / "jobs" / job_id
    time.sleep(0.3)  # past its queue time; the submitting event loop has ended, so nothing renders it
    # `kling status` only reports (issue 13): running, with a note naming how to continue.
    code, out, err = _kling(["status", "mock", job_id, "--json"], capsys)
    assert code == 0, err
    status = json.loads(out)
    assert status["state"] == "running", status
    [note] = status["logs"]
    assert "not alive" in note and "kling jobs resume " in note and "re-run the edit" in note
    code, out, err = _kling(["status", "mock", job_id], capsys)
    assert code == 0 and out.startswith("running") and "not alive" in out, err
    assert not list(job_dir.glob("*.mp4"))  # no render happened
    assert json.loads((job_dir / "job.json").read_text())["state"] == "queued"
    # A waiting command continues it.
    key = note.split("kling jobs resume ", 1)[1].split("`", 1)[0]
    code, out, err = _kling(["jobs", "resume", key], capsys)
    assert code == 0, err
    assert Path(out.strip()).is_file()
    code, out, err = _kling(["status", "mock", job_id, "--json"], capsys)
    assert code == 0, err
    status = json.loads(out)
    assert status["state"] == "succeeded"
    assert Path(status["result"]["video"]["url"].removeprefix("file://")).is_file()


@pytest.mark.ffmpeg
def test_a_rerun_of_the_edit_finishes_an_orphaned_job(sample: SampleMedia, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    args = ["edit", str(sample.video), "-p", "night", "--quality", "std", "-q", "-O", "latency=0.2"]
    code, out, err = _kling([*args, "--no-wait"], capsys)
    assert code == 0, err
    job_id = out.strip()
    time.sleep(0.3)
    code, out, err = _kling(["status", "mock", job_id, "--json"], capsys)
    assert code == 0 and json.loads(out)["state"] == "running", err
    code, out, err = _kling([*args, "-o", "out.mp4"], capsys)
    assert code == 0, err
    assert (tmp_path / "out.mp4").is_file()
    assert [p.name for p in (tmp_path / "cache" / "mock" / "jobs").iterdir()] == [job_id]  # no second submit


def test_scripted_failure_from_the_command_line(sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, _out, err = _kling(["edit", str(sample.video), "-p", "x", "-O", "fail=insufficient_credits", "-q",
                              "-o", "out.mp4"], capsys)
    assert code == 1
    assert "insufficient credits" in err and "Traceback" not in err
    code, _out, err = _kling(["edit", str(sample.video), "-p", "x", "-O", "fail=sometimes", "-q"], capsys)
    assert code == 2 and "options.fail" in err
