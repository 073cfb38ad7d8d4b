"""The Python API checks an output path as the CLI does, before anything is paid for, and a job
moved to another output gives back the empty default name it had reserved (mock provider)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import kling
from media_fixtures import sample

from kling_core import aedit
from kling_core.client import AsyncEditClient, EditClient
from kling_core.config import config_from_document
from kling_core.errors import ValidationError
from kling_core.media import SampleMedia

__all__ = ["sample"]


@pytest.fixture(autouse=True)
def _mock_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def rendered(tmp_path: Path) -> int:
    """Mock jobs submitted so far (one folder per submit)."""
    jobs = tmp_path / "cache" / "mock" / "jobs"
    return len(list(jobs.iterdir())) if jobs.is_dir() else 0


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def only_output_problem(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    [problem] = exc.value.problems
    assert problem.path == "output"
    return problem.message


def test_aedit_refuses_its_input_as_output_before_submitting(sample: SampleMedia, tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    shutil.copy(sample.video, src)
    before = sha(src)
    with pytest.raises(ValidationError) as exc:
        asyncio.run(aedit(src, "make it blue", output=src))
    assert "is the same file as the input" in only_output_problem(exc)
    assert sha(src) == before and rendered(tmp_path) == 0


def test_edit_refuses_a_directory_before_submitting(sample: SampleMedia, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()

    async def go() -> list[str]:
        async with AsyncEditClient() as client:
            with pytest.raises(ValidationError) as exc:
                await client.edit(client.request(sample.video, "make it blue"), output=folder)
            assert "is a directory" in only_output_problem(exc)
            return [r.state for r in client.jobs(limit=0)]

    assert asyncio.run(go()) == [] and rendered(tmp_path) == 0
    assert list(folder.iterdir()) == []


@pytest.mark.ffmpeg
def test_edit_refuses_a_bad_output_before_waiting_for_its_turn(sample: SampleMedia, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    config = config_from_document({"providers": {"mock": {"max_in_flight": 1, "options": {"latency": 5}}}})

    async def go() -> None:
        async with AsyncEditClient(config=config) as client:
            running = asyncio.Event()
            first = asyncio.ensure_future(client.edit(client.request(sample.video, "one"), output=tmp_path / "a.mp4",
                                                      on_submit=lambda _handle: running.set()))
            await running.wait()  # the only slot is taken until that job ends
            with pytest.raises(ValidationError) as exc:
                await client.edit(client.request(sample.video, "two"), output=folder)
            assert "is a directory" in only_output_problem(exc)
            assert not first.done()  # told at once, not after the first job's turn
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first

    asyncio.run(go())
    assert rendered(tmp_path) == 1


def test_start_and_the_sync_client_refuse_a_bad_output_before_submitting(sample: SampleMedia, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with EditClient() as client:
        request = client.request(sample.video, "make it blue")
        with pytest.raises(ValidationError) as exc:
            client.start(request, output=tmp_path / "afile" / "out.mp4")  # a parent that is a file
        assert "is not a directory" in only_output_problem(exc)
        with pytest.raises(ValidationError) as exc:
            client.edit(request, output=sample.video)
        assert "is the same file as the input" in only_output_problem(exc)
        assert client.jobs(limit=0) == []
    assert rendered(tmp_path) == 0


@pytest.mark.ffmpeg
def test_resume_and_save_refuse_a_bad_output_before_logging_it(sample: SampleMedia, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()

    async def go() -> None:
        async with AsyncEditClient() as client:
            handle = await client.submit(client.request(sample.video, "make it blue"), output=tmp_path / "a.mp4")
            key = handle.client_key
            assert key is not None
            for bad, why in ((folder, "is a directory"), (sample.video, "is the same file as the input")):
                with pytest.raises(ValidationError) as exc:
                    await client.resume(key, output=bad)
                assert why in only_output_problem(exc)
                assert client.job(key).output == str(tmp_path / "a.mp4")  # the log kept the good path
            saved = await client.resume(key, output=tmp_path / "b.mp4", timeout=60)
            assert saved.video.path == str(tmp_path / "b.mp4")
            with pytest.raises(ValidationError) as exc:  # a finished result, saved by hand
                await client.save(saved, folder)
            assert "is a directory" in only_output_problem(exc)

    asyncio.run(go())
    assert (tmp_path / "b.mp4").stat().st_size > 0 and rendered(tmp_path) == 1
    assert not (tmp_path / "a.mp4").exists() and list(folder.iterdir()) == []


@pytest.mark.ffmpeg
def test_resume_to_another_output_gives_back_the_reserved_default(
        sample: SampleMedia, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = kling(capsys, "edit", str(sample.video), "-p", "y", "--timeout", "0.3", "-q",
                            "-O", "latency=2")
    assert code == 1 and "did not finish" in err
    placeholder = tmp_path / f"{sample.video.stem}-edited.mp4"
    assert placeholder.stat().st_size == 0  # kept while the unfinished job will save to it
    code, out, _err = kling(capsys, "jobs", "--json")
    key = json.loads(out)[0]["client_key"]
    code, _out, err = kling(capsys, "jobs", "resume", key, "-o", "other.mp4", "-q")
    assert code == 0, err
    assert (tmp_path / "other.mp4").stat().st_size > 0 and rendered(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "other.mp4"]


@pytest.mark.ffmpeg
def test_rerunning_to_another_output_gives_back_the_reserved_default(
        sample: SampleMedia, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["edit", str(sample.video), "-p", "y", "-q"]
    code, _out, err = kling(capsys, *args, "--timeout", "0.3", "-O", "latency=2")
    assert code == 1 and "did not finish" in err
    assert (tmp_path / f"{sample.video.stem}-edited.mp4").stat().st_size == 0
    # The same request again, saved elsewhere: the job is picked up, not submitted again.
    code, _out, err = kling(capsys, *args, "-O", "latency=2", "-o", "other.mp4")
    assert code == 0, err
    assert rendered(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "other.mp4"]


def test_an_output_another_unfinished_job_names_is_kept(tmp_path: Path) -> None:
    from kling_core.client.joblog_ops import release_unless_named
    from kling_core.joblog import JobLog

    journal = JobLog(tmp_path / "log")
    held = tmp_path / "clip-edited.mp4"
    held.touch()
    journal.claim(provider="mock", model="kling-o1", request={"request": {}}, request_sha256="0" * 64,
                  client_key="k1", base_key=None, new=False, output=str(held))
    release_unless_named(journal, str(held))
    assert held.exists()  # k1 will still save there
    journal.transition("k1", "failed", error="refused")
    release_unless_named(journal, str(held))
    assert not held.exists()
