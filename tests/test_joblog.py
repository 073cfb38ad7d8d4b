"""The SQLite job log: claims and takes, state history, several processes at once, migration, pruning."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from kling_core.errors import ValidationError
from kling_core.joblog import JobLog, parse_age, parse_states, prune_cache
from kling_core.joblog.migrate import LEGACY
from kling_core.joblog.schema import connect
from kling_core.provider import JobHandle

REQ = {"request": {"prompt": "x"}, "media_sha256": {}}


def claim(log: JobLog, **kw: object) -> tuple[object, bool]:
    args: dict[str, object] = {"provider": "mock", "model": "kling-o1", "request": REQ, "request_sha256": "d" * 64}
    args.update(kw)
    return log.claim(**args)  # type: ignore[arg-type]


def test_the_log_is_sqlite_in_wal_mode_and_private(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    claim(log, client_key="k1")
    conn = sqlite3.connect(tmp_path / "jobs.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
        "jobs", "events", "takes", "meta"}
    assert stat.S_IMODE((tmp_path / "jobs.db").stat().st_mode) == 0o600


def test_every_state_change_is_an_event_with_its_time(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    record, created = claim(log, client_key="k1", output="/tmp/out.mp4")
    assert created and record.state == "submitting" and record.take == 1  # type: ignore[attr-defined]
    handle = JobHandle(provider="mock", job_id="mock-1", client_key="k1", urls={"status": "https://x/s"})
    assert log.transition("k1", "submitted", durable=True, handle=handle)
    assert log.transition("k1", "running")
    assert log.transition("k1", "running", error="slow")  # same state: fields only, no event
    assert log.transition("k1", "succeeded", result={"job_id": "mock-1"}, cost={"credits": 3.0})
    assert log.transition("k1", "saved", detail="/tmp/out.mp4")
    assert not log.transition("nope", "saved")
    got = log.get("k1")
    assert got is not None
    assert [e.state for e in got.events] == ["submitting", "submitted", "running", "succeeded", "saved"]
    times = [e.at for e in got.events]
    assert times == sorted(times) and abs(times[0] - time.time()) < 60
    assert got.events[-1].detail == "/tmp/out.mp4"
    assert got.handle == handle and got.job_id == "mock-1" and got.cost == {"credits": 3.0}
    assert got.output == "/tmp/out.mp4" and got.error == "slow" and got.finished
    assert log.find("mock-1")[0].client_key == "k1"  # by job id
    assert log.find_job("mock", "mock-1") is not None


def test_a_derived_key_is_picked_up_until_saved_then_a_new_take(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    first, created = claim(log, base_key="b" * 20)
    assert created and first.client_key == "b" * 20 + "-1"  # type: ignore[attr-defined]
    again, created = claim(log, base_key="b" * 20)
    assert not created and again.client_key == first.client_key  # type: ignore[attr-defined]
    log.transition(first.client_key, "succeeded")  # type: ignore[attr-defined]
    again, created = claim(log, base_key="b" * 20)
    assert not created  # known but not saved: still this job
    log.transition(first.client_key, "saved")  # type: ignore[attr-defined]
    second, created = claim(log, base_key="b" * 20)
    assert created and second.take == 2 and second.client_key.endswith("-2")  # type: ignore[attr-defined]
    third, created = claim(log, base_key="b" * 20, new=True)
    assert created and third.take == 3  # type: ignore[attr-defined]
    # Forgetting a take never lets its key be issued again.
    assert log.delete(third.client_key)  # type: ignore[attr-defined]
    log.transition(second.client_key, "cancelled")  # type: ignore[attr-defined]
    fourth, _ = claim(log, base_key="b" * 20)
    assert fourth.take == 4  # type: ignore[attr-defined]


def test_a_refused_submit_frees_its_key(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    first, _ = claim(log, base_key="c" * 20)
    log.transition(first.client_key, "failed", detail="refused", error="402")  # type: ignore[attr-defined]
    again, created = claim(log, base_key="c" * 20)
    assert created and again.client_key == first.client_key and again.state == "submitting"  # type: ignore[attr-defined]
    # An explicit key: refused, so free again for the same request; another request may not take it.
    claim(log, client_key="mine")
    log.transition("mine", "failed", error="402")
    _, created = claim(log, client_key="mine")
    assert created
    log.transition("mine", "failed", error="402")
    other, created = claim(log, client_key="mine", request_sha256="e" * 64)
    assert not created and other.state == "failed"  # type: ignore[attr-defined]


def test_list_filters_newest_first(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    for i, provider in enumerate(["mock", "fal", "mock"]):
        claim(log, client_key=f"k{i}", provider=provider)
        time.sleep(0.01)
    log.transition("k0", "saved")
    assert [r.client_key for r in log.list()] == ["k2", "k1", "k0"]
    assert [r.client_key for r in log.list(provider="mock")] == ["k2", "k0"]
    assert [r.client_key for r in log.list(states={"saved"})] == ["k0"]
    assert [r.client_key for r in log.list(limit=1)] == ["k2"]
    assert log.list(since=time.time() + 60) == []


def test_a_submit_whose_process_died_is_listed_as_uncertain(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    claim(log, client_key="k1")
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        conn.execute("UPDATE jobs SET owner = ? WHERE client_key = 'k1'", (f"{os.uname().nodename}:{proc.pid}",))
    assert log.settle_stale() == ["k1"]
    got = log.get("k1")
    assert got is not None and got.state == "uncertain" and "ended" in (got.events[-1].detail or "")
    claim(log, client_key="k2")  # our own, live process: left alone
    assert log.settle_stale() == []


def _writer(root: str, worker: int, count: int) -> None:
    log = JobLog(root)
    for i in range(count):
        key = f"w{worker}-{i}"
        log.claim(provider="mock", model=None, request=REQ, request_sha256="d" * 64, client_key=key)
        log.transition(key, "submitted", durable=True,
                       handle=JobHandle(provider="mock", job_id=f"job-{worker}-{i}", client_key=key))
        log.transition(key, "running")
        log.transition(key, "succeeded", result={"n": i})
        log.transition(key, "saved")


def test_two_processes_write_at_once_and_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    log = JobLog(tmp_path)
    records = log.list(limit=None)
    assert len(records) == 80 and all(r.state == "saved" for r in records)
    conn = sqlite3.connect(tmp_path / "jobs.db")
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 80 * 5
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _racer(root: str, barrier: object, out: object) -> None:
    log = JobLog(root)
    log.salt()  # open (and migrate) before the race
    barrier.wait()  # type: ignore[attr-defined]
    record, created = log.claim(provider="mock", model=None, request=REQ, request_sha256="d" * 64, base_key="r" * 20)
    out.put((record.client_key, created))  # type: ignore[attr-defined]


def test_two_processes_running_the_same_command_agree_on_one_job(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert {key for key, _ in results} == {"r" * 20 + "-1"}
    assert sorted(created for _, created in results) == [False, True]


def test_old_json_entries_are_migrated_once_and_moved_aside(tmp_path: Path) -> None:
    old = tmp_path / "jobs"
    old.mkdir()
    handle = {"provider": "fal", "job_id": "req-1", "model": "kling-o1", "client_key": "a1", "urls": {},
              "submitted_at": 5.0, "data": {}}
    entries = {
        "a1": {"client_key": "a1", "provider": "fal", "request_sha256": "1" * 64, "state": "submitted",
               "handle": handle, "result": None, "error": None},
        "a2": {"client_key": "a2", "provider": "fal", "request_sha256": "2" * 64, "state": "submitting",
               "handle": None, "result": None, "error": None},
        "a3": {"client_key": "a3", "provider": "mock", "request_sha256": "3" * 64, "state": "succeeded",
               "handle": None, "result": {"model": "kling-o3", "cost": {"credits": 2.0}}, "error": None},
    }
    for key, doc in entries.items():
        (old / f"{key}.json").write_text(json.dumps(doc))
    (old / "broken.json").write_text("{not json")
    log = JobLog(tmp_path)
    a1, a2, a3 = log.get("a1"), log.get("a2"), log.get("a3")
    assert a1 is not None and a1.state == "submitted" and a1.job_id == "req-1" and a1.handle is not None
    assert a1.request_sha256 == LEGACY + "1" * 64 and a1.events[0].detail == "migrated from a1.json"
    assert a2 is not None and a2.state == "uncertain"  # an old claim whose process died mid-submit
    assert a3 is not None and a3.state == "succeeded" and a3.model == "kling-o3" and a3.cost == {"credits": 2.0}
    assert not old.exists() and (tmp_path / "jobs.migrated" / "a1.json").is_file()
    assert (tmp_path / "jobs.migrated" / "broken.json").is_file()  # kept, not deleted
    # Opening again migrates nothing twice.
    assert len(JobLog(tmp_path).list(limit=None)) == 3


def test_the_schema_is_created_once_by_whoever_opens_first(tmp_path: Path) -> None:
    first = connect(tmp_path / "jobs.db")
    second = connect(tmp_path / "jobs.db")
    assert first.execute("PRAGMA user_version").fetchone()[0] == second.execute("PRAGMA user_version").fetchone()[0]
    assert second.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400),
                                                ("2w", 1209600), ("0", 0), ("1.5h", 5400), (45, 45)])
def test_ages(text: str | int, seconds: float) -> None:
    assert parse_age(text, field="since") == seconds


@pytest.mark.parametrize("text", ["2x", "-1h", "inf", "nan", "h", "", "1e999", "99999w"])
def test_bad_ages_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^since: "):
        parse_age(text, field="since")


def test_states_and_groups() -> None:
    assert parse_states("saved,failed") == {"saved", "failed"}
    assert parse_states(("unfinished",)) >= {"uncertain", "succeeded", "submitting"}  # type: ignore[operator]
    with pytest.raises(ValidationError, match="state: 'done' is not a job state"):
        parse_states("done")


def _age(path: Path, days: float) -> None:
    past = time.time() - days * 86400
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (past, past))


def test_prune_removes_old_renders_and_keeps_what_is_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    jobs = cache / "mock" / "jobs"
    old, fresh, rendering, needed = (jobs / f"mock-{c * 20}" for c in "abcd")
    for folder in (old, fresh, rendering, needed):
        folder.mkdir(parents=True)
        (folder / "job.json").write_text("{}")
        (folder / "render.lock").write_text("")
    download = cache / "mock" / "downloads" / "clip.mp4"
    download.parent.mkdir(parents=True)
    download.write_bytes(b"x" * 100)
    body = cache / "segmind" / "segmind-k.mp4"
    body.parent.mkdir(parents=True)
    body.write_bytes(b"y" * 10)
    for path in (old, rendering, needed, download, body):
        _age(path, 10)
    log = JobLog(tmp_path / "state")
    claim(log, client_key="k1")
    log.transition("k1", "succeeded", handle=JobHandle(provider="mock", job_id=needed.name))  # not saved yet
    claim(log, client_key="k2", provider="segmind")
    log.transition("k2", "succeeded", handle=JobHandle(provider="segmind", job_id="v1",
                                                       data={"result_url": body.as_uri()}))
    fd = os.open(rendering / "render.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        dry = prune_cache("7d", dry_run=True, journal=log, roots=[cache])
        assert sorted(Path(e.path).name for e in dry.removed) == ["clip.mp4", old.name]
        assert old.exists() and download.exists()
        report = prune_cache("7d", journal=log, roots=[cache])
    finally:
        os.close(fd)
    assert not old.exists() and not download.exists() and not download.parent.exists()
    assert fresh.exists() and rendering.exists() and needed.exists() and body.exists()
    assert report.bytes >= 100 and set(report.kept_in_use) == {str(rendering), str(needed), str(body)}
    assert report.to_document()["removed"][0]["path"]
    with pytest.raises(ValidationError, match="older_than"):
        prune_cache("soon", journal=log, roots=[cache])
