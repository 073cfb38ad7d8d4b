"""`kling jobs`, `jobs show|resume|forget`, `cache prune` and re-run = resume, as the CLI runs them (mock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling
from media_fixtures import sample

from kling_core.media import SampleMedia

__all__ = ["sample"]


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def kling_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = kling(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def rendered(tmp_path: Path) -> int:
    """Mock jobs created so far (one folder per submit)."""
    jobs = tmp_path / "cache" / "mock" / "jobs"
    return len(list(jobs.iterdir())) if jobs.is_dir() else 0


def edit_args(sample: SampleMedia, *extra: str) -> list[str]:
    return ["edit", str(sample.video), "-p", "warm it like @Image1", "--image", str(sample.images[0]),
            "--quality", "std", "-q", *extra]


def assert_json_error(capsys: pytest.CaptureFixture[str], args: list[str], field: str, code: int = 2) -> dict[str, Any]:
    got, out, err = kling(capsys, *args, "--json")
    assert got == code, err
    assert err.count("error:") == 1 and "Traceback" not in err
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == code
    if field:
        assert [p["path"] for p in doc["problems"]] == [field], doc
        assert err.startswith(f"error: {field}: ")
    return dict(doc)


@pytest.mark.ffmpeg
def test_rerunning_an_edit_resumes_then_makes_a_new_take(sample: SampleMedia, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert kling_json(capsys, "jobs") == []
    code, out, _err = kling(capsys, *edit_args(sample, "--no-wait"))
    assert code == 0
    job_id = out.strip()
    # The same command again: the job it already has is picked up, not submitted again.
    code, out, err = kling(capsys, *edit_args(sample))
    assert code == 0, err
    first = Path(out.strip())
    assert first == tmp_path / "sample-edited.mp4" or first.name.endswith("-edited.mp4")
    assert first.stat().st_size > 0 and rendered(tmp_path) == 1
    [entry] = kling_json(capsys, "jobs")
    assert entry["job_id"] == job_id and entry["state"] == "saved" and entry["output"] == str(first)
    assert entry["take"] == 1 and entry["request"]["media_sha256"]["video"]
    # Saved: the same command is a new take, saved under a new default name.
    code, out, _err = kling(capsys, *edit_args(sample))
    assert code == 0 and Path(out.strip()) != first and rendered(tmp_path) == 2
    # --new always submits.
    code, out, _err = kling(capsys, *edit_args(sample, "--new", "-o", "third.mp4"))
    assert code == 0 and rendered(tmp_path) == 3
    listed = kling_json(capsys, "jobs")
    assert [e["take"] for e in listed] == [3, 2, 1]  # newest first
    assert len({e["client_key"] for e in listed}) == 3
    assert [e["take"] for e in kling_json(capsys, "jobs", "-n", "1")] == [3]
    assert kling_json(capsys, "jobs", "--state", "failed,uncertain") == []
    assert len(kling_json(capsys, "jobs", "--provider", "mock", "--since", "1h")) == 3
    assert kling_json(capsys, "jobs", "--provider", "fal") == []
    code, out, _err = kling(capsys, "jobs")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["CREATED", "STATE", "PROVIDER"]


@pytest.mark.ffmpeg
def test_show_resume_forget_with_json(sample: SampleMedia, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = kling_json(capsys, *edit_args(sample, "-o", "out.mp4"))
    job_id = result["job_id"]
    shown = kling_json(capsys, "jobs", "show", job_id)
    key = shown["client_key"]
    assert [e["state"] for e in shown["events"]] == ["submitting", "submitted", "running", "succeeded", "saved"]
    assert shown["next"] and "kling jobs resume" in shown["next"][0]
    assert kling_json(capsys, "jobs", "show", key[:10])["job_id"] == job_id  # a unique key prefix
    code, out, _err = kling(capsys, "jobs", "show", key)
    assert code == 0 and f"client key:  {key} (take 1)" in out and "history:" in out
    # Resume fetches the video again (it is saved already: no wait, no new job).
    again = kling_json(capsys, "jobs", "resume", key, "-o", "again.mp4", "--timeout", "60", "-q")
    assert again["video"]["path"] == str(tmp_path / "again.mp4") and (tmp_path / "again.mp4").stat().st_size > 0
    assert rendered(tmp_path) == 1
    assert kling_json(capsys, "jobs", "show", key)["output"] == str(tmp_path / "again.mp4")
    gone = kling_json(capsys, "jobs", "forget", key)
    assert gone["forgotten"]["client_key"] == key and kling_json(capsys, "jobs") == []
    assert (tmp_path / "out.mp4").exists()  # forgetting a job never touches a saved video


@pytest.mark.ffmpeg
def test_an_unsaved_result_is_saved_by_resume(sample: SampleMedia, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = kling(capsys, *edit_args(sample, "--no-wait", "-O", "latency=0.2"))
    assert code == 0
    [entry] = kling_json(capsys, "jobs", "--state", "unfinished")
    code, out, err = kling(capsys, "jobs", "resume", entry["client_key"])
    assert code == 0, err
    saved = Path(out.strip())
    assert saved.name == "sample-edited.mp4" or saved.name.endswith("-edited.mp4")
    assert saved.stat().st_size > 0 and "resuming mock job" in err
    assert kling_json(capsys, "jobs", "show", entry["client_key"])["state"] == "saved"
    assert rendered(tmp_path) == 1


@pytest.mark.ffmpeg
def test_an_uncertain_submit_is_listed_and_its_message_settles_it(sample: SampleMedia, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = edit_args(sample, "-O", "fail=server_error")  # HTTP 500 after sending: the job may exist
    code, _out, err = kling(capsys, *args)
    assert code == 1 and "NOT resubmitted" in err
    [entry] = kling_json(capsys, "jobs", "--state", "uncertain")
    key = entry["client_key"]
    for command in (f"kling jobs show {key}", f"kling jobs resume {key} --job-id ID", f"kling jobs forget {key} --force"):
        assert command in err
    assert not list(tmp_path.glob("*-edited*.mp4")) or all(p.stat().st_size == 0 for p in tmp_path.glob("*.mp4"))
    code, _out, err = kling(capsys, *args)  # re-run: refused, naming the same commands
    assert code == 1 and f"kling jobs forget {key} --force" in err and err.count("error:") == 1
    assert kling_json(capsys, "jobs", "show", key)["next"][0].startswith(f"kling jobs show {key}")
    doc = assert_json_error(capsys, ["jobs", "forget", key], "job")
    assert "uncertain" in doc["message"]
    assert kling_json(capsys, "jobs", "forget", key, "--force")["forgotten"]["state"] == "uncertain"
    assert not list(tmp_path.glob("*-edited*.mp4"))  # its reserved default name was given back


@pytest.mark.ffmpeg
def test_cache_prune(sample: SampleMedia, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kling_json(capsys, *edit_args(sample, "-o", "out.mp4"))
    kling(capsys, *edit_args(sample, "--no-wait", "--new", "-O", "latency=30"))  # unfinished: its render stays
    assert rendered(tmp_path) == 2
    dry = kling_json(capsys, "cache", "prune", "--older-than", "0s", "--dry-run")
    assert dry["dry_run"] and len(dry["removed"]) == 1 and rendered(tmp_path) == 2
    report = kling_json(capsys, "cache", "prune", "--older-than", "0")
    assert [Path(e["path"]).parent.name for e in report["removed"]] == ["jobs"] and rendered(tmp_path) == 1
    assert report["bytes"] > 0 and len(report["kept_in_use"]) == 1
    assert kling_json(capsys, "cache", "prune")["removed"] == []  # default: older than 7 days
    code, out, _err = kling(capsys, "cache", "prune", "--dry-run")
    assert code == 0 and "would remove 0 entries" in out


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["jobs", "--since", "2x"], "since"),
        (["jobs", "-n", "-1"], "limit"),
        (["jobs", "-n", "ten"], "limit"),
        (["jobs", "--state", "done"], "state"),
        (["jobs", "show", "no-such-job"], "job"),
        (["jobs", "resume", "no-such-job"], "job"),
        (["jobs", "resume", "k", "--timeout", "inf"], "timeout"),
        (["jobs", "resume", "k", "-o", "out.mov"], "output"),
        (["jobs", "forget", "no-such-job"], "job"),
        (["cache", "prune", "--older-than", "forever"], "older_than"),
        (["edit", "clip.mp4", "-p", "x", "--timeout", "nan"], "timeout"),
        (["edit", "clip.mp4", "-p", "x", "--timeout", "0"], "timeout"),
        (["edit", "clip.mp4", "-p", "x", "--new", "--client-key", "k1"], "new"),
        (["result", "mock", "mock-0", "-o", "x.mp4", "--timeout", "-5"], "timeout"),
    ],
)
def test_bad_input_exits_2_naming_the_field_with_the_error_as_json(
    args: list[str], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    assert_json_error(capsys, args, field)
    code, out, err = kling(capsys, *args)  # without --json: the message only
    assert code == 2 and out == "" and err.startswith(f"error: {field}: ")


def _kling_proc(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "KLING_PLUGINS": "mock", "KLING_CACHE_DIR": str(cwd / "cache")}
    return subprocess.Popen([sys.executable, "-m", "kling_core", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.ffmpeg
def test_kill_9_while_waiting_then_the_same_command_saves_that_job(sample: SampleMedia, tmp_path: Path) -> None:
    args = ["edit", str(sample.video), "-p", "night", "--quality", "std", "-O", "latency=3"]
    proc = _kling_proc(*args, cwd=tmp_path)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline and "submitted" not in line:
        line = proc.stderr.readline()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert "submitted mock job" in line
    job_id = line.split()[-1]
    listing = subprocess.run([sys.executable, "-m", "kling_core", "jobs", "--json"], cwd=tmp_path, text=True,
                             capture_output=True, env={**os.environ, "KLING_PLUGINS": "mock"}, timeout=60)
    [entry] = json.loads(listing.stdout)
    assert entry["job_id"] == job_id and entry["state"] in ("submitted", "running")
    # The same command: it finds the job (the mock renders the orphaned job in this process).
    again = _kling_proc(*args, "--timeout", "120", cwd=tmp_path)
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    assert f"resumed mock job {job_id}" in err and "submitted" not in err.replace("not submitted again", "")
    assert Path(out.strip()).stat().st_size > 0
    assert len(list((tmp_path / "cache" / "mock" / "jobs").iterdir())) == 1
