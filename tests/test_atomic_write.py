"""kling_core.files: the one write-to-a-temporary-file-then-rename helper."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from kling_core.files import (
    StreamTooLarge,
    atomic_open,
    atomic_path,
    copy_atomic,
    temp_path,
    write_bytes_atomic,
    write_chunks_atomic,
    write_text_atomic,
)
from kling_core.joblog import JobLog

PART = re.compile(r"^\.target\.bin\.[0-9a-f]{12}\.part$")


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_temporary_names_are_recognisable_and_beside_the_target(tmp_path: Path) -> None:
    tmp = temp_path(tmp_path / "target.bin")
    assert tmp.parent == tmp_path and PART.match(tmp.name)
    assert temp_path(tmp_path / "target.bin") != tmp


def test_bytes_and_text_replace_the_target(tmp_path: Path) -> None:
    dest = tmp_path / "target.bin"
    dest.write_bytes(b"old")
    assert write_bytes_atomic(dest, b"new") == dest and dest.read_bytes() == b"new"
    write_text_atomic(dest, "h\u00e9")
    assert dest.read_text("utf-8") == "h\u00e9"
    assert names(tmp_path) == ["target.bin"]


def test_an_exception_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "target.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(dest) as fh:
        fh.write(b"half")
        assert [n for n in names(tmp_path) if PART.match(n)]  # written under the .part name
        raise RuntimeError("boom")
    assert dest.read_bytes() == b"old" and names(tmp_path) == ["target.bin"]


def test_a_path_writer_is_renamed_on_success_and_removed_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "target.bin"
    with atomic_path(dest) as tmp:
        tmp.write_bytes(b"by name")  # as ffmpeg writes its output
    assert dest.read_bytes() == b"by name"
    with pytest.raises(ValueError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError("ffmpeg failed")
    assert dest.read_bytes() == b"by name" and names(tmp_path) == ["target.bin"]
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "never.bin"):
        pass  # the writer produced nothing: an error, not an empty file
    assert names(tmp_path) == ["target.bin"]


def test_permissions_follow_the_umask_unless_asked_for_private(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "public", b"x")
        write_bytes_atomic(tmp_path / "private", b"x", perms=0o600)
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


async def _chunks(n: int, *, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for i in range(n):
        if i == fail_at:
            raise ConnectionError("dropped")
        await asyncio.sleep(0)
        yield bytes([i]) * 100


def test_streamed_writes(tmp_path: Path) -> None:
    dest = tmp_path / "target.bin"
    assert asyncio.run(write_chunks_atomic(dest, _chunks(5))) == 500
    assert dest.read_bytes() == b"".join(bytes([i]) * 100 for i in range(5))


@pytest.mark.parametrize("case", ["source fails", "over the limit", "verify refuses"])
def test_a_failed_stream_keeps_nothing(tmp_path: Path, case: str) -> None:
    dest = tmp_path / "target.bin"

    def verify(count: int) -> None:
        raise ValueError(f"{count} bytes: wrong size")

    run: dict[str, tuple[Callable[[], Coroutine[Any, Any, int]], type[Exception]]] = {
        "source fails": (lambda: write_chunks_atomic(dest, _chunks(5, fail_at=3)), ConnectionError),
        "over the limit": (lambda: write_chunks_atomic(dest, _chunks(5), limit=250), StreamTooLarge),
        "verify refuses": (lambda: write_chunks_atomic(dest, _chunks(5), verify=verify), ValueError),
    }
    start, error = run[case]
    with pytest.raises(error):
        asyncio.run(start())
    assert names(tmp_path) == []


def test_cancellation_leaves_no_temporary(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"first"
        started.set()
        await asyncio.Event().wait()  # never comes
        yield b"never"

    async def go() -> None:
        task = asyncio.create_task(write_chunks_atomic(tmp_path / "target.bin", stalls()))
        await started.wait()
        assert [n for n in names(tmp_path) if PART.match(n)]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert names(tmp_path) == []


def test_copy(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    assert asyncio.run(copy_atomic(src, tmp_path / "target.bin")) == src.stat().st_size
    assert (tmp_path / "target.bin").read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError):
        asyncio.run(copy_atomic(tmp_path / "missing", tmp_path / "other.bin"))
    assert names(tmp_path) == ["src.bin", "target.bin"]


def test_the_job_log_is_private(tmp_path: Path) -> None:
    journal = JobLog(tmp_path)
    journal.claim(provider="mock", model="kling-o1", request={}, request_sha256="0" * 64, client_key="k1")
    assert stat.S_IMODE((tmp_path / "jobs.db").stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.glob("jobs.db*"))
    assert journal.get("k1") is not None
