"""The job log keeps what a job cost: the schema upgrade that added the estimate and the attempts,
the COST column and total of ``kling jobs``, and Kling's reported units end to end."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import kling
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.config import config_from_document
from kling_core.errors import ConfigError
from kling_core.joblog import JobLog
from kling_core.joblog import schema as joblog_schema
from kling_core.joblog.costs import job_cost
from kling_core.media import SampleMedia


def _version_1_log(path: Path) -> None:
    """A log as version 1 wrote it: the jobs table without the estimate and attempts columns."""
    ddl = joblog_schema.DDL.replace("    estimate       TEXT,\n", "").replace("    attempts       TEXT,\n", "")
    assert "estimate" not in ddl and "attempts" not in ddl
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    conn.execute("INSERT INTO jobs (client_key, provider, model, request_sha256, job_id, state, cost, created_at, "
                 "updated_at) VALUES ('old-1', 'kling', 'kling-o1', 'sha', 'task-1', 'saved', '{\"credits\": 8.0}', "
                 "1.0, 2.0)")
    conn.execute("INSERT INTO events (client_key, state, at) VALUES ('old-1', 'saved', 2.0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_log_is_upgraded_in_place(tmp_path: Path) -> None:
    _version_1_log(tmp_path / "state" / "jobs.db")
    log = JobLog(tmp_path / "state")
    old = log.get("old-1")
    assert old is not None and old.cost == {"credits": 8.0} and old.estimate is None and old.attempts == ()
    assert log.transition("old-1", estimate={"usd": 1.5}, attempts=[{"provider": "kling", "outcome": "served"}])
    again = log.get("old-1")
    assert again is not None and again.estimate == {"usd": 1.5} and again.attempts[0]["outcome"] == "served"
    log.close()
    conn = sqlite3.connect(tmp_path / "state" / "jobs.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == joblog_schema.VERSION == 2
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    assert {"estimate", "attempts"} <= columns
    conn.close()
    JobLog(tmp_path / "state").get("old-1")  # opening an upgraded log again changes nothing


def test_a_log_newer_than_this_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "jobs.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {joblog_schema.VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="newer than this kling-core"):
        JobLog(tmp_path / "state").get("x")


def _job(log: JobLog, key: str, provider: str, state: str, **fields: Any) -> None:
    _record, created = log.claim(provider=provider, model="kling-o1", request={"k": key}, request_sha256=key,
                                client_key=key)
    assert created
    log.transition(key, state, **fields)


def test_kling_jobs_shows_cost_per_job_and_in_total(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KLING_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.chdir(tmp_path)
    log = JobLog(tmp_path / "state")
    _job(log, "job-kling", "kling", "saved", cost={"credits": 12.0})
    _job(log, "job-fal", "fal", "saved", estimate={"usd": 1.08, "upper_bound": False, "source": "https://fal.ai/x"})
    _job(log, "job-url", "fal", "succeeded", estimate={"usd": 1.6884, "upper_bound": True})
    _job(log, "job-paid", "other", "saved", cost={"amount": 0.5, "currency": "USD"}, estimate={"usd": 0.7})
    _job(log, "job-refused", "segmind", "failed", estimate={"usd": 1.3}, error="refused")
    _job(log, "job-free", "mock", "saved")
    log.close()
    code, out, err = kling(capsys, "jobs")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:7] == ["CREATED", "STATE", "PROVIDER", "CLIENT", "KEY", "JOB", "ID"] and "COST" in header
    by_key = {row.split()[4]: row for row in rows[:-1]}
    assert "12 units" in by_key["job-kling"] and "~$1.08" in by_key["job-fal"] and "<=$1.69" in by_key["job-url"]
    assert "$0.50" in by_key["job-paid"] and "~$0.70" not in by_key["job-paid"]  # the reported charge wins
    assert " - " in by_key["job-free"].split("job-free", 1)[1]
    # The failed job is not counted: it made no video.
    assert rows[-1] == ("total: $3.27 over 5 finished jobs listed; 2 by estimate; plus 12 host units; "
                        "1 without a known price")
    code, out, err = kling(capsys, "jobs", "show", "job-fal")
    assert code == 0, err
    assert "cost:        ~$1.08 (estimate before submitting)" in out
    assert "price from:  https://fal.ai/x" in out


@pytest.mark.ffmpeg
@pytest.mark.kling_emulator(hosts=("kling", "segmind"))
def test_klings_reported_units_reach_the_log_and_kling_jobs(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data_url = f"data:video/mp4;base64,{base64.b64encode(sample.video.read_bytes()).decode()}"
    answer = httpx.post(f"{kling_emulator.urls['segmind']}/upload-asset", json={"data_urls": [data_url]},
                        headers={"x-api-key": kling_emulator.keys["segmind"]}, timeout=30)
    (video,) = answer.json()["file_urls"]
    doc = {"media": {"allow_private_urls": True},
           "providers": {"kling": {"base_url": kling_emulator.urls["kling"], "poll": {"initial": 0.05, "max": 0.2}}}}
    with EditClient(provider="kling", config=config_from_document(doc), environ=kling_emulator.environ(),
                    journal=JobLog(tmp_path / "state")) as client:
        result = client.edit(client.request(video, "Make it night", quality="std"), output=tmp_path / "out.mp4")
        record = client.jobs()[0]
    assert result.cost is not None and result.cost.credits is not None and result.cost.credits > 0
    assert record.cost is not None and record.cost["credits"] == result.cost.credits  # final_unit_deduction
    assert job_cost(record).text == f"{result.cost.credits:g} units"
    assert record.estimate is not None and record.estimate["usd"] is None  # Kling publishes no dollar price
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KLING_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.chdir(tmp_path)
    code, out, err = kling(capsys, "jobs")
    assert code == 0, err
    assert f"{result.cost.credits:g} units" in out
    assert out.splitlines()[-1] == f"total: $0.00 over 1 finished job listed; plus {result.cost.credits:g} host units"
