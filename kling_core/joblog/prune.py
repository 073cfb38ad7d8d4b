"""``kling cache prune``: remove old renders and downloads from the cache folder.

Under ``$KLING_CACHE_DIR`` (and ``media.work_dir`` when the config names one) live the mock's
job folders (``mock/jobs/<job id>/``: the job record and its render), the media it downloaded
(``mock/downloads/``), and videos hosts answered a submit with (``<provider>/*.mp4``). An entry
is removed when everything in it is older than the cut-off, unless a job still needs it:
a mock job a process is rendering (its lock is held) or a file an unfinished job in the log
points at (a result not saved yet).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from kling_core.config import KlingConfig
from kling_core.joblog.records import UNFINISHED, parse_age
from kling_core.joblog.store import JobLog
from kling_core.media.workdir import cache_dir


@attrs.frozen
class PrunedEntry:
    path: str
    bytes: int
    age: float  # seconds since anything in it changed


@attrs.frozen
class PruneReport:
    """What ``prune_cache`` removed (or, with ``dry_run``, would remove) and what it kept."""

    roots: tuple[str, ...]
    older_than: float
    dry_run: bool
    removed: tuple[PrunedEntry, ...] = ()
    kept_in_use: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.removed)

    def to_document(self) -> dict[str, Any]:
        return {
            "roots": list(self.roots), "older_than": self.older_than, "dry_run": self.dry_run,
            "removed": [attrs.asdict(e) for e in self.removed], "bytes": self.bytes,
            "kept_in_use": list(self.kept_in_use),
        }


def _entries(root: Path) -> Iterator[Path]:
    """Units of removal: each mock job folder whole, every other file on its own."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here.name == "jobs":
            for name in list(dirnames):
                yield here / name
            dirnames.clear()
        for name in filenames:
            yield here / name


def _stats(path: Path) -> tuple[int, float]:
    """Total bytes and newest mtime of a file or folder (symlinks are not followed)."""
    st = path.lstat()
    size, newest = st.st_size, st.st_mtime
    if path.is_dir() and not path.is_symlink():
        for dirpath, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    fst = (Path(dirpath) / name).lstat()
                    size += fst.st_size
                    newest = max(newest, fst.st_mtime)
    return size, newest


def _rendering(folder: Path) -> bool:
    """A mock job whose render lock a live process holds."""
    try:
        fd = os.open(folder / "render.lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def _needed(journal: JobLog) -> tuple[set[str], set[Path]]:
    """Job ids and local files that unfinished jobs still need."""
    ids: set[str] = set()
    paths: set[Path] = set()
    for record in journal.list(states=UNFINISHED):
        if record.job_id:
            ids.add(record.job_id)
        urls = [str((record.result or {}).get("video", {}).get("url") or "")]
        if record.handle is not None:
            urls += list(record.handle.data.values())
        for url in urls:
            if url.startswith("file://"):
                with contextlib.suppress(OSError, ValueError):
                    paths.add(Path(url.removeprefix("file://")).resolve())
    return ids, paths


def _roots(config: KlingConfig | None) -> list[Path]:
    roots = [cache_dir()]
    if config is not None and config.media.work_dir:
        roots.append(Path(config.media.work_dir).expanduser())
    out: list[Path] = []
    for root in roots:
        if root.is_dir() and root.resolve() not in {r.resolve() for r in out}:
            out.append(root)
    return out


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
        here = Path(dirpath)
        if here != root:
            with contextlib.suppress(OSError):
                here.rmdir()  # only succeeds when empty


def prune_cache(
    older_than: str | float = "7d",
    *,
    dry_run: bool = False,
    config: KlingConfig | None = None,
    journal: JobLog | None = None,
    roots: Iterable[str | os.PathLike[str]] | None = None,
) -> PruneReport:
    """Remove cached renders and downloads older than ``older_than`` (``"7d"``, ``"12h"``, seconds).

    ``dry_run`` removes nothing and reports what would go. A mock job being rendered and any
    file an unfinished job in the log still needs are kept whatever their age.
    """
    age = parse_age(older_than, field="older_than")
    folders = [Path(r) for r in roots] if roots is not None else _roots(config)
    journal = journal if journal is not None else JobLog()
    ids, paths = _needed(journal)
    cutoff = time.time() - age
    now = time.time()
    removed: list[PrunedEntry] = []
    kept: list[str] = []
    for root in folders:
        if not root.is_dir():
            continue
        for entry in list(_entries(root)):
            try:
                size, newest = _stats(entry)
            except OSError:
                continue
            if newest > cutoff:
                continue
            resolved = entry.resolve()
            in_use = entry.name in ids or any(p == resolved or resolved in p.parents for p in paths)
            if not in_use and entry.is_dir() and entry.parent.name == "jobs":
                in_use = _rendering(entry)
            if in_use:
                kept.append(str(entry))
                continue
            removed.append(PrunedEntry(path=str(entry), bytes=size, age=round(now - newest, 1)))
            if not dry_run:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        if not dry_run:
            _remove_empty_dirs(root)
    return PruneReport(
        roots=tuple(str(r) for r in folders), older_than=age, dry_run=dry_run,
        removed=tuple(removed), kept_in_use=tuple(kept),
    )
