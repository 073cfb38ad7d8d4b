"""Text that is not UTF-8 and job logs kling cannot use.

A shell hands Python argv bytes that are not UTF-8 as a str with lone surrogates
(surrogateescape). As a prompt, option, element text or URL no host can be sent it: bad input,
refused before the job log claims anything. As a local file name it is a real file: it is
edited, and the job log keeps the output name exactly so a resume saves to the same file. A
job log that is not SQLite, or was written by a newer kling-core, is a config error naming it.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import respx
from cli_helpers import kling
from media_fixtures import sample

from kling_core.cli import main
from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.contract.checks import check_references
from kling_core.contract.models import EditRequest, Element
from kling_core.errors import ConfigError, ValidationError
from kling_core.joblog import JobLog
from kling_core.joblog import schema as joblog_schema
from kling_core.media import SampleMedia

__all__ = ["sample"]

BAD = os.fsdecode(b"\xff\xfe")  # what Python makes of the argv bytes of $'\xff\xfe'
LATIN1_NAME = b"caf\xe9"  # a Latin-1 file name: valid on Linux, not UTF-8
NOT_UTF8 = "is not valid UTF-8 text"
SEGMIND_V1 = "https://api.segmind.com/v1/kling-o1-video-to-video-edit"
REQ = {"request": {"prompt": "x"}, "media_sha256": {}}

needs_byte_names = pytest.mark.skipif(sys.platform in ("win32", "darwin"),
                                      reason="needs a file system that takes any bytes as a name")


def state() -> Path:
    return Path(os.environ["KLING_STATE_DIR"])


# -- 1. text that is not UTF-8 is bad input, refused before a claim -----------------------

@pytest.mark.parametrize(("fields", "path"), [
    ({"prompt": BAD}, "prompt"),
    ({"options": {"seed": BAD}}, "options.seed"),
    ({"options": {BAD: "x"}}, "options"),
    ({"webhook_url": f"https://hooks.example/{BAD}"}, "webhook_url"),
    ({"images": [f"https://media.example/{BAD}.png"]}, "images[0]"),
    ({"video": f"https://media.example/{BAD}.mp4"}, "video"),
    ({"elements": [Element("f.png", ("r.png",), name=BAD)]}, "elements[0].name"),
    ({"elements": [Element("f.png", ("r.png",), description=BAD)]}, "elements[0].description"),
])
def test_each_text_that_is_not_utf8_is_named(fields: dict[str, object], path: str) -> None:
    doc: dict[str, object] = {"prompt": "make it blue", "video": "in.mp4", **fields}
    problems = check_references(EditRequest(**doc))  # type: ignore[arg-type]
    assert [(p.path, NOT_UTF8 in p.message) for p in problems] == [(path, True)]


def test_a_local_file_name_that_is_not_utf8_is_no_text_problem() -> None:
    name = os.fsdecode(LATIN1_NAME + b".mp4")
    request = EditRequest(prompt="make it blue", video=name, images=(os.fsdecode(LATIN1_NAME + b".png"),))
    assert check_references(request) == []


def test_cli_dry_run_refuses_a_prompt_that_is_not_utf8(capsys: pytest.CaptureFixture[str],
                                                       sample: SampleMedia) -> None:
    code, _out, err = kling(capsys, "edit", str(sample.video), "-p", BAD, "--dry-run")
    assert code == 2, err
    assert err.strip().splitlines() == [f"error: prompt: {NOT_UTF8} (it holds bytes that do not decode as UTF-8)"]
    assert JobLog().list() == []


def test_an_http_submit_of_a_prompt_that_is_not_utf8_is_refused_before_any_claim(tmp_path: Path) -> None:
    router = respx.Router()
    route = router.post(SEGMIND_V1)
    cfg = config_from_document({"providers": {"segmind": {"options": {"api": "v1"}}},
                                "media": {"work_dir": str(tmp_path / "work")}})
    journal = JobLog(tmp_path / "state")
    client = AsyncEditClient(provider="segmind", config=cfg, environ={"SEGMIND_API_KEY": "sk-test"},
                             transport=httpx.MockTransport(router.handler), journal=journal)
    request = client.request("https://media.example/in.mp4", BAD, client_key="p-k")
    with pytest.raises(ValidationError) as exc:
        asyncio.run(client.start(request))
    assert [p.path for p in exc.value.problems] == ["prompt"]
    assert route.call_count == 0
    assert journal.get("p-k") is None  # no stray 'uncertain' row to block a corrected re-run


# -- 2. a local file name that is not UTF-8: edited, logged exactly, resumed to it --------

@needs_byte_names
def test_the_job_log_keeps_a_path_that_is_not_utf8_exactly(tmp_path: Path) -> None:
    log = JobLog(tmp_path)
    first = os.fsdecode(b"/videos/" + LATIN1_NAME + b"-edited.mp4")
    record, created = log.claim(provider="mock", model="kling-o1", request=REQ, request_sha256="d" * 64,
                                client_key="k1", output=first)
    assert created and record.output == first
    assert log.get("k1").output == first  # type: ignore[union-attr]
    assert [r.output for r in log.list()] == [first]

    moved = os.fsdecode(b"/videos/" + LATIN1_NAME + b"-2.mp4")
    log.transition("k1", "failed", output=moved, error=f"cannot write {moved}", detail=f"to {moved}")
    got = log.get("k1")
    assert got is not None and got.output == moved
    # Messages only show the name: the byte that is not UTF-8 as an escape.
    assert got.error == "cannot write /videos/caf\\xe9-2.mp4"
    assert got.events[-1].detail == "to /videos/caf\\xe9-2.mp4"

    assert log.reclaim("k1", output=first)
    assert log.get("k1").output == first  # type: ignore[union-attr]
    log.close()
    raw = sqlite3.connect(tmp_path / "jobs.db").execute("SELECT output FROM jobs").fetchone()[0]
    assert raw == os.fsencode(first)  # the file name's own bytes


@needs_byte_names
def test_a_video_named_in_latin1_is_edited_to_its_default_output(capsys: pytest.CaptureFixture[str],
                                                                  sample: SampleMedia, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(sample.video, os.fsdecode(LATIN1_NAME + b".mp4"))
    # The CLI prints the saved path. A process's stdout in a C or C.UTF-8 locale writes such a
    # name back as its own bytes (surrogateescape); pytest's capture would refuse it.
    printed = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(printed, encoding="utf-8", errors="surrogateescape",
                                                        write_through=True))
    with pytest.raises(SystemExit) as info:
        main(["edit", os.fsdecode(LATIN1_NAME + b".mp4"), "-p", "make it blue", "-q"])
    assert info.value.code in (0, None), capsys.readouterr().err
    saved = tmp_path / os.fsdecode(LATIN1_NAME + b"-edited.mp4")
    assert saved.stat().st_size > 0
    assert os.fsencode(saved) in printed.getvalue()
    [record] = JobLog().list()
    assert record.state == "saved" and record.output == str(saved)


@needs_byte_names
def test_a_resumed_job_saves_to_the_latin1_name_it_was_started_with(sample: SampleMedia, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    output = tmp_path / os.fsdecode(LATIN1_NAME + b"-edited.mp4")

    async def go() -> Path:
        async with AsyncEditClient(provider="mock") as client:
            handle = await client.submit(client.request(sample.video, "make it blue"), output=output)
            result = await client.resume(str(handle.client_key))
            assert result.video.path is not None
            return Path(result.video.path)

    assert asyncio.run(go()) == output
    assert output.stat().st_size > 0
    [record] = JobLog().list()
    assert record.state == "saved" and record.output == str(output)


# -- 3. a job log kling cannot use is a config error naming it ---------------------------

def _garbage_log(path: Path) -> None:
    path.write_bytes(b"not a database, just some bytes " * 8)


def _newer_log(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {joblog_schema.VERSION + 1}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("make", "reason"), [
    (_garbage_log, "not a usable job log (file is not a database)"),
    (_newer_log, f"job log version {joblog_schema.VERSION + 1} is newer than this kling-core's"),
], ids=["not-sqlite", "newer-version"])
def test_a_log_kling_cannot_use_names_its_file(capsys: pytest.CaptureFixture[str], make: Callable[[Path], None],
                                               reason: str) -> None:
    path = state() / "jobs.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as exc:
        JobLog().list()
    assert exc.value.file == str(path) and reason in exc.value.reason
    code, _out, err = kling(capsys, "jobs")
    assert code == 2
    assert err.strip().splitlines() == [f"error: {path}: {exc.value.reason}"]
    assert path.read_bytes() == before  # left as it was for the user to look at


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes on Linux")
def test_the_kling_process_prints_a_non_utf8_file_name_as_its_bytes_whatever_the_locale(tmp_path: Path) -> None:
    import subprocess

    state = tmp_path / "state"
    output = os.fsdecode(bytes(tmp_path) + b"/" + LATIN1_NAME + b"-edited.mp4")
    log = JobLog(state)
    log.claim(provider="mock", model="kling-o1", request={"prompt": "x"}, request_sha256="0" * 64,
              client_key="k-latin1", output=output)
    log.close()
    env = {**os.environ, "KLING_STATE_DIR": str(state), "KLING_CACHE_DIR": str(tmp_path / "cache"),
           "KLING_CONFIG_DIR": str(tmp_path / "config"), "PYTHONIOENCODING": "utf-8:strict"}
    done = subprocess.run([sys.executable, "-m", "kling_core", "jobs"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert LATIN1_NAME + b"-edited.mp4" in done.stdout  # the bytes of the name, as ls shows them
