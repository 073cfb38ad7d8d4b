"""`kling cache prune` removes only what kling wrote, in kling's own layout, and never the job log."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest
from cli_helpers import kling

from kling_core.config import load_config
from kling_core.joblog import JobLog, prune_cache
from kling_core.provider import JobHandle

OLD_DAYS = 30
MOCK_ID = "mock-" + "a" * 20


def _age(path: Path, days: float = OLD_DAYS) -> None:
    past = time.time() - days * 86400
    for p in [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]:
        os.utime(p, (past, past), follow_symlinks=False)


def _write(path: Path, data: bytes = b"x" * 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _age(path)
    return path


def _job(jobs: Path, job_id: str = MOCK_ID) -> Path:
    folder = jobs / job_id
    _write(folder / "job.json", b"{}")
    _write(folder / "out.mp4")
    _age(folder)
    return folder


def _logged(log: JobLog, provider: str, key: str) -> None:
    """A finished job in the log: its key names the body file kling saved for it."""
    log.claim(provider=provider, model="kling-o1", request={"request": {}}, request_sha256=key.encode().hex()[:64],
              client_key=key)
    log.transition(key, "saved")


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_only_kling_entries_go_from_the_cache_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    job = _job(cache / "mock" / "jobs")
    download = _write(cache / "mock" / "downloads" / "clip.mp4")
    body = _write(cache / "segmind" / "segmind-k1.mp4")
    strangers = [
        _write(cache / "notes.txt"),
        _write(cache / "projects" / "film.mov"),
        _write(cache / "mock" / "jobs" / "not-a-job-id" / "job.json"),  # not a mock job id
        _write(cache / "mock" / "jobs" / ("mock-" + "b" * 20) / "render.mp4"),  # no job.json
        _write(cache / "mock" / "jobs" / "stray.txt"),
        _write(cache / "mock" / "downloads" / "sub" / "deep.mp4"),  # not directly in downloads/
        _write(cache / "segmind" / "holiday.mp4"),  # not named by kling
        _write(cache / "segmind" / "segmind-k1.mov"),
        _write(cache / "my-videos" / "my-videos-cut.mp4"),  # no provider is called my-videos
        _write(cache / "segmind-k2.mp4"),  # bodies live in <provider>/ under the cache folder
    ]
    report = prune_cache("7d", journal=JobLog(tmp_path / "state"), roots=[cache])
    assert sorted(Path(e.path) for e in report.removed) == sorted([job, download, body])
    assert not job.exists() and not download.exists() and not body.exists()
    assert all(p.exists() for p in strangers)
    assert not (cache / "segmind").joinpath("segmind-k1.mp4").exists() and (cache / "segmind").is_dir()


def test_a_project_used_as_work_dir_keeps_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``[media] work_dir = "."``: the mock writes jobs/ and downloads/ into the project itself."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "kling.toml").write_text('[media]\nwork_dir = "."\n')
    _age(project / "kling.toml")
    mine = [_write(project / "README.txt"), _write(project / "src" / "main.py"),
            _write(project / "downloads" / "paper.pdf"), _write(project / "segmind.mp4"),
            _write(project / "jobs" / "todo.txt"), project / "kling.toml"]
    empty = project / ".git" / "refs" / "tags"
    empty.mkdir(parents=True)
    job = _job(project / "jobs")
    download = _write(project / "downloads" / ("0123456789abcdef" + ".mp4"))
    body = _write(project / "segmind-k1.mp4")
    (project / "kling.toml").write_text('[media]\nwork_dir = "."\n[providers.kling-beijing]\nuses = "kling"\n')
    _age(project / "kling.toml")
    alias_body = _write(project / "kling-beijing-k3.mp4")  # also starts with "kling-": listed once
    log = JobLog()
    _logged(log, "segmind", "k1")
    _logged(log, "kling-beijing", "k3")
    log.close()
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.chdir(project)
    expected = sorted(p.resolve() for p in (job, download, body, alias_body))
    for dry in (["--dry-run"], []):
        code, out, err = kling(capsys, "cache", "prune", "--json", *dry)
        assert code == 0, err
        assert sorted(Path(e["path"]).resolve() for e in json.loads(out)["removed"]) == expected
    assert not any(p.exists() for p in expected)
    assert all(p.exists() for p in mine) and empty.is_dir()
    assert (project / "jobs").is_dir() and (project / "downloads").is_dir()  # not emptied: kept


def test_the_job_log_survives_a_shared_state_and_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    shared = tmp_path / "kling"
    shared.mkdir()
    monkeypatch.setenv("KLING_STATE_DIR", str(shared))
    monkeypatch.setenv("KLING_CACHE_DIR", str(shared))
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.chdir(tmp_path)
    log = JobLog()
    record, _ = log.claim(provider="mock", model="kling-o1", request={"request": {}}, request_sha256="ab" * 32,
                          client_key="k1")
    log.transition(record.client_key, "submitted", job_id="job-123")
    log.close()
    (shared / "webhooks.db").write_bytes(b"")
    job = _job(shared / "mock" / "jobs")
    for f in shared.iterdir():
        _age(f)
    before = {p.name for p in shared.iterdir()}
    assert {"jobs.db", "webhooks.db"} <= before
    code, out, err = kling(capsys, "cache", "prune", "--json")
    assert code == 0, err
    assert [e["path"] for e in json.loads(out)["removed"]] == [str(job)]
    assert before - {p.name for p in shared.iterdir()} == {"mock"}  # emptied by this prune
    reopened = JobLog(shared)
    got = reopened.get("k1")
    assert got is not None and got.job_id == "job-123"
    reopened.close()


def test_the_log_files_are_guarded_even_inside_the_layout(tmp_path: Path) -> None:
    """A state folder that is the downloads folder itself: its jobs.db* stay, the folder stays."""
    cache = tmp_path / "cache"
    downloads = cache / "mock" / "downloads"
    log = JobLog(downloads)
    log.claim(provider="mock", model="kling-o1", request={"request": {}}, request_sha256="cd" * 32,
              client_key="k2")
    log.close()
    for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm", "webhooks.db"):
        if (downloads / name).exists():
            _age(downloads / name)
        else:
            _write(downloads / name, b"")
    clip = _write(downloads / "clip.mp4")
    report = prune_cache("7d", journal=JobLog(downloads), roots=[cache])
    assert [Path(e.path) for e in report.removed] == [clip]
    assert {"jobs.db", "jobs.db-wal", "jobs.db-shm", "webhooks.db"} <= {p.name for p in downloads.iterdir()}


def test_only_folders_this_prune_emptied_are_removed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for empty in (cache / "mock" / "jobs", cache / "mock" / "downloads", cache / "segmind",
                  cache / ".git" / "refs" / "tags", cache / "user" / "empty"):
        empty.mkdir(parents=True)
    fresh = _job(cache / "mock" / "jobs", "mock-" + "c" * 20)
    _age(fresh, 0)
    log = JobLog(tmp_path / "state")
    before = _tree(cache)
    nothing = prune_cache("7d", journal=log, roots=[cache])
    assert nothing.removed == () and _tree(cache) == before  # nothing old: not one folder goes
    old = _write(cache / "segmind" / "segmind-k.mp4")
    report = prune_cache("7d", journal=log, roots=[cache])
    assert [Path(e.path) for e in report.removed] == [old]
    assert _tree(cache) == before - {"segmind"}


def test_links_are_removed_as_links_and_never_followed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    precious = _write(elsewhere / "precious.mp4")
    job_inside = _job(elsewhere / "jobs")  # looks like a job, but only through a link
    link = cache / "mock" / "downloads" / "linked.mp4"
    link.parent.mkdir(parents=True)
    link.symlink_to(precious)
    (cache / "mock" / "jobs").symlink_to(elsewhere / "jobs", target_is_directory=True)
    (cache / "segmind").mkdir()
    (cache / "segmind" / "segmind-k.mp4").symlink_to(precious)
    for p in (link, cache / "segmind" / "segmind-k.mp4", cache / "mock" / "jobs"):
        _age(p)
    report = prune_cache("7d", journal=JobLog(tmp_path / "state"), roots=[cache])
    assert sorted(Path(e.path).name for e in report.removed) == ["linked.mp4", "segmind-k.mp4"]
    assert not link.is_symlink() and precious.exists() and job_inside.exists()
    assert (cache / "mock" / "jobs").is_symlink()


def test_unfinished_jobs_keep_their_files_and_the_report_says_so(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    needed = _job(cache / "mock" / "jobs")
    body = _write(cache / "segmind" / "segmind-k2.mp4")
    spare = _write(cache / "mock" / "downloads" / "spare.png")
    log = JobLog(tmp_path / "state")
    log.claim(provider="mock", model="kling-o1", request={"request": {}}, request_sha256="ef" * 32,
              client_key="k1")
    log.transition("k1", "succeeded", handle=JobHandle(provider="mock", job_id=needed.name))
    log.claim(provider="segmind", model="kling-o1", request={"request": {}}, request_sha256="fe" * 32,
              client_key="k2")
    log.transition("k2", "succeeded", handle=JobHandle(provider="segmind", job_id="v1",
                                                       data={"result_url": body.as_uri()}))
    dry = prune_cache("7d", dry_run=True, journal=log, roots=[cache])
    assert [Path(e.path) for e in dry.removed] == [spare] and spare.exists()
    report = prune_cache("7d", journal=log, roots=[cache])
    assert [Path(e.path) for e in report.removed] == [spare] and report.bytes == 10
    assert set(report.kept_in_use) == {str(needed), str(body)} and needed.exists() and body.exists()


def test_a_work_dir_keeps_provider_named_videos_no_logged_job_saved(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A project as work dir: ``kling-demo.mp4`` is the user's clip, ``kling-demo-edited.mp4``
    the result kling saved for it; only ``<provider>-<key>.mp4`` of a key the log holds is kling's."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "kling.toml").write_text('[media]\nwork_dir = "."\n')
    monkeypatch.chdir(project)
    log = JobLog(tmp_path / "state")
    _logged(log, "segmind", "k1")
    _logged(log, "fal", "k2")
    mine = [_write(project / "kling-demo.mp4"), _write(project / "kling-demo-edited.mp4"),
            _write(project / "fal-k1.mp4"),  # k1 is segmind's job, not fal's
            _write(project / ".kling-demo.mp4.0123456789ab.part")]
    bodies = [_write(project / "segmind-k1.mp4"), _write(project / "fal-k2.mp4")]
    report = prune_cache("7d", config=load_config(cwd=project), journal=log)
    assert sorted(Path(e.path).resolve() for e in report.removed) == sorted(bodies)
    assert all(p.exists() for p in mine)


def test_a_killed_writers_staging_files_go_and_a_live_ones_stay(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``.NAME.<12 hex>.part`` beside a kling name is debris once its writer is gone (no lock)."""
    cache = tmp_path / "cache"
    project = tmp_path / "project"
    project.mkdir()
    (project / "kling.toml").write_text('[media]\nwork_dir = "."\n')
    monkeypatch.chdir(project)
    monkeypatch.setenv("KLING_CACHE_DIR", str(cache))
    log = JobLog(tmp_path / "state")
    _logged(log, "segmind", "k1")
    debris = [_write(cache / "segmind" / ".segmind-k9.mp4.0123456789ab.part"),
              _write(cache / "segmind" / ".segmind-k9.mp4.0123456789ab.new"),  # killed before its lock
              _write(project / ".segmind-k1.mp4.abcdef012345.part"),
              _write(project / "downloads" / ".0123456789abcdef.mp4.abcdef012345.part")]
    live = _write(cache / "segmind" / ".segmind-k8.mp4.fedcba987654.part")
    strangers = [_write(cache / "segmind" / ".holiday.mp4.0123456789ab.part"),
                 _write(cache / "segmind" / ".segmind-k9.mp4.0123.part"),  # not kling's temporary name
                 _write(project / ".segmind-k7.mp4.abcdef012345.part"),  # k7: no job in the log
                 _write(project / "downloads" / ".paper.pdf.abcdef012345.part")]
    fd = os.open(live, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as outputs.staging_file holds it while writing
        report = prune_cache("7d", config=load_config(cwd=project), journal=log)
    finally:
        os.close(fd)
    assert sorted(Path(e.path).resolve() for e in report.removed) == sorted(debris)
    assert report.kept_in_use == (str(live),) and live.exists()
    assert all(p.exists() for p in strangers)
    again = prune_cache("7d", config=load_config(cwd=project), journal=log)
    assert [Path(e.path) for e in again.removed] == [live]
