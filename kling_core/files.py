"""Atomic file writes: a temporary file beside the target, fsynced, then renamed over it.

Readers see the old file or the complete new one, never a torn write, and a crash leaves no
half-written target. ``durable=False`` skips the fsyncs, for files nothing is lost without
(a cache, a record rewritten moments later): still atomic, but a power cut may take back
the last write. The temporary file is named ``.NAME.<hex>.part`` so a leftover is
recognisable, and it is removed on any failure, cancellation included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


class StreamTooLarge(Exception):
    """The stream passed its byte limit; nothing was kept."""


class StreamIncomplete(Exception):
    """The stream ended short of (or past) the size it was announced with; nothing was kept."""


def temp_path(dest: Path) -> Path:
    """A fresh temporary name in ``dest``'s folder (same file system, so the rename is atomic)."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; some file systems cannot open or sync a directory.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _committed(dest: Path, *, sync_file: bool, sync_dir: bool = True) -> Iterator[Path]:
    tmp = temp_path(dest)
    try:
        yield tmp
        if sync_file:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, dest)
        if sync_dir:
            _fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful rename


def atomic_path(dest: str | Path, *, durable: bool = True) -> contextlib.AbstractContextManager[Path]:
    """A temporary path for a writer that takes a file name (ffmpeg).

    When the block ends without an exception the file there is fsynced (unless not
    ``durable``) and renamed over ``dest`` (a missing file is an error); otherwise it is removed.
    """
    return _committed(Path(dest), sync_file=durable, sync_dir=durable)


@contextlib.contextmanager
def atomic_open(dest: str | Path, *, perms: int = 0o666, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write; it replaces ``dest`` only if the block ends without an exception.

    ``perms`` is filtered by the umask, as for any new file (journal entries pass 0o600).
    """
    with _committed(Path(dest), sync_file=False, sync_dir=durable) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, perms)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())


def write_bytes_atomic(dest: str | Path, data: bytes, *, perms: int = 0o666, durable: bool = True) -> Path:
    """Replace ``dest`` with ``data`` atomically; return ``dest``."""
    with atomic_open(dest, perms=perms, durable=durable) as fh:
        fh.write(data)
    return Path(dest)


def write_text_atomic(
    dest: str | Path, text: str, *, encoding: str = "utf-8", perms: int = 0o666, durable: bool = True
) -> Path:
    """Replace ``dest`` with ``text`` atomically; return ``dest``."""
    return write_bytes_atomic(dest, text.encode(encoding), perms=perms, durable=durable)


async def write_chunks_atomic(
    dest: str | Path,
    chunks: AsyncIterable[bytes],
    *,
    limit: int | None = None,
    verify: Callable[[int], None] | None = None,
) -> int:
    """Stream ``chunks`` into ``dest`` atomically (never whole in memory); return the byte count.

    More than ``limit`` bytes raises :class:`StreamTooLarge` at once. ``verify`` gets the
    final count before the rename and may raise (a size check) to keep nothing.
    """
    with atomic_open(dest) as fh:
        count = await write_chunks(fh, chunks, limit=limit)
        if verify is not None:
            verify(count)
    return count


async def write_chunks(fh: BinaryIO, chunks: AsyncIterable[bytes], *, limit: int | None = None) -> int:
    """Write ``chunks`` to an open file; the byte count. More than ``limit`` bytes raises
    :class:`StreamTooLarge` at once, before the excess is written."""
    count = 0
    async for chunk in chunks:
        count += len(chunk)
        if limit is not None and count > limit:
            raise StreamTooLarge(f"more than {limit} bytes: over the size limit")
        fh.write(chunk)
    return count


async def _file_chunks(src: Path) -> AsyncGenerator[bytes, None]:
    # Reads happen in a worker thread, writes in the caller's: a cancelled copy leaves no
    # thread behind that could still create or rename the temporary file.
    with src.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk


async def copy_atomic(
    src: str | Path, dest: str | Path, *, limit: int | None = None, verify: Callable[[int], None] | None = None
) -> int:
    """Copy the file ``src`` over ``dest`` atomically; return the byte count."""
    async with contextlib.aclosing(_file_chunks(Path(src))) as chunks:
        return await write_chunks_atomic(dest, chunks, limit=limit, verify=verify)
