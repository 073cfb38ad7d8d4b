"""``kling cache prune``: remove old renders and downloads kling wrote to its cache folder.

Only kling's own layout is looked at, never anything else in the folder. Under
``$KLING_CACHE_DIR``: the mock's job folders (``mock/jobs/<job id>/`` holding a ``job.json``:
the job record and its render), the media it downloaded (files directly in ``mock/downloads/``)
and videos hosts answered a submit with (``<provider>/<provider>-*.mp4``, ``<provider>`` an
installed provider or one the config names). Under ``media.work_dir``, when the config names
one, the same without the ``mock/`` and ``<provider>/`` levels: ``jobs/<job id>/``,
``downloads/<sha256 prefix>.<ext>`` (the names downloads are given) and ``<provider>-<key>.mp4``
where ``<key>`` is a client key the job log holds for that provider (that folder may be the
user's project, where ``kling-demo.mp4`` is their own clip). A staging file a killed writer
left beside one of those names (``.NAME.<12 hex>.part``, or ``.new`` before it was locked)
counts as that name, unless a live writer still holds its lock. The job log (``jobs.db*``,
``webhooks.db*``) and the state folder are never removed, even when they share the folder.
An entry is removed when everything in it is older than the cut-off, unless a job still needs
it: a mock job a process is rendering (its lock is held) or a file an unfinished job in the log
points at (a result not saved yet). Afterwards the layout folders
that this prune emptied are removed; no other folder is. Symlinks are never followed: a link
is removed as a link.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from kling_core.config import KlingConfig
from kling_core.joblog.records import UNFINISHED, parse_age
from kling_core.joblog.store import JobLog
from kling_core.media.workdir import cache_dir
from kling_core.plugins import ENTRY_POINT_GROUP


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


JOB_ID_RE = re.compile(r"mock-[0-9a-f]{20}")  # the mock's job ids (folder names)
DOWNLOAD_RE = re.compile(r"[0-9a-f]{16}(\.[a-z0-9]{1,5})?")  # media.fetch.url_file_name
STAGED_RE = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.(part|new)")  # files.temp_path, outputs.staging_file
PROTECTED = ("jobs.db", "webhooks.db")  # the job log and webhook replay log, with -wal/-shm


@attrs.frozen
class _Layout:
    """Where kling writes under one root: the mock's folder and how answer bodies are laid out."""

    mock: Path
    downloads_named: bool  # True: only files named like a download (a folder the user may share)
    body_folders: bool  # True: <provider>/<provider>-*.mp4; False: <provider>-*.mp4 in the root


def _real_dir(path: Path) -> bool:
    """A folder, not a link to one (prune never follows links)."""
    with contextlib.suppress(OSError):
        return stat.S_ISDIR(path.lstat().st_mode)
    return False


def _files(folder: Path) -> Iterator[Path]:
    """Files and links directly in ``folder`` (not sub-folders)."""
    if not _real_dir(folder):
        return
    with contextlib.suppress(OSError):
        for child in sorted(folder.iterdir()):
            if not _real_dir(child):
                yield child


def _ours(name: str, rule: Callable[[str], bool]) -> bool:
    """``name`` follows ``rule``, or is a staging file of a name that does (a killed writer's)."""
    staged = STAGED_RE.fullmatch(name)
    return rule(staged["name"] if staged else name)


def _body_rule(provider: str, journal: JobLog | None) -> Callable[[str], bool]:
    """``<provider>-*.mp4``; with ``journal`` only ``<provider>-<key>.mp4`` for a key it holds."""
    prefix = f"{provider}-"

    def rule(name: str) -> bool:
        if not (name.startswith(prefix) and name.endswith(".mp4")):
            return False
        if journal is None:
            return True
        record = journal.get(name.removeprefix(prefix).removesuffix(".mp4"))
        return record is not None and record.provider == provider

    return rule


def _entries(root: Path, layout: _Layout, providers: Iterable[str], journal: JobLog) -> Iterator[Path]:
    """Units of removal in kling's own layout only: each mock job folder whole, each file kling named."""
    jobs = layout.mock / "jobs"
    if _real_dir(layout.mock) and _real_dir(jobs):
        with contextlib.suppress(OSError):
            for folder in sorted(jobs.iterdir()):
                if (JOB_ID_RE.fullmatch(folder.name) and _real_dir(folder)
                        and (folder / "job.json").is_file() and not (folder / "job.json").is_symlink()):
                    yield folder
    if _real_dir(layout.mock):
        for path in _files(layout.mock / "downloads"):
            if not layout.downloads_named or _ours(path.name, lambda n: bool(DOWNLOAD_RE.fullmatch(n))):
                yield path
    seen: set[Path] = set()  # "kling-beijing-k.mp4" starts with both "kling-" and "kling-beijing-"
    for name in sorted(set(providers) - {"mock"}):
        folder = root / name if layout.body_folders else root
        # A <provider>/ folder is kling's; a work dir may be a project with its own kling-*.mp4.
        rule = _body_rule(name, None if layout.body_folders else journal)
        for path in _files(folder):
            if path not in seen and _ours(path.name, rule):
                seen.add(path)
                yield path


def _providers(config: KlingConfig | None) -> set[str]:
    """Names answer bodies are saved under: installed providers and the config's own tables."""
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if config is not None:
        names |= set(config.providers)
    return {n for n in names if n and "/" not in n and n not in (".", "..")}


def _protected(entry: Path, state: Path | None) -> bool:
    """The job log's files, or the state folder (or a folder holding it)."""
    if entry.name.startswith(PROTECTED):
        return True
    if state is None:
        return False
    resolved = entry.parent.resolve() / entry.name  # the link itself, not what it points at
    return resolved == state or resolved in state.parents


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


def _held(path: Path) -> bool:
    """A file whose ``flock`` a live process holds: a mock job's ``render.lock``, a staging file
    (the kernel drops the lock when its holder dies, ``kill -9`` included)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
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


def _roots(config: KlingConfig | None) -> list[tuple[Path, _Layout]]:
    """The cache folder (``mock/``, ``<provider>/``) and ``media.work_dir`` (the mock's folder itself)."""
    cache = cache_dir()
    roots = [(cache, _Layout(mock=cache / "mock", downloads_named=False, body_folders=True))]
    if config is not None and config.media.work_dir:
        work = Path(config.media.work_dir).expanduser()
        roots.append((work, _Layout(mock=work, downloads_named=True, body_folders=False)))
    out: list[tuple[Path, _Layout]] = []
    for root, layout in roots:
        if root.is_dir() and root.resolve() not in {r.resolve() for r, _ in out}:
            out.append((root, layout))
    return out


def _remove_emptied(folders: Iterable[Path], stop: Path) -> None:
    """Remove the layout folders this prune emptied (deepest first), never ``stop`` or above it."""
    for folder in sorted(set(folders), key=lambda p: -len(p.parts)):
        if folder != stop and stop in folder.parents and _real_dir(folder):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty


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
    layout_roots = ([(Path(r), _Layout(mock=Path(r) / "mock", downloads_named=False, body_folders=True))
                     for r in roots] if roots is not None else _roots(config))
    journal = journal if journal is not None else JobLog()
    ids, paths = _needed(journal)
    state = journal.root.resolve()
    providers = _providers(config)
    cutoff = time.time() - age
    now = time.time()
    removed: list[PrunedEntry] = []
    kept: list[str] = []
    for root, layout in layout_roots:
        if not root.is_dir():
            continue
        emptied: set[Path] = set()
        for entry in list(_entries(root, layout, providers, journal)):
            if _protected(entry, state):
                continue
            try:
                size, newest = _stats(entry)
            except OSError:
                continue
            if newest > cutoff:
                continue
            resolved = entry.resolve()
            in_use = entry.name in ids or any(p == resolved or resolved in p.parents for p in paths)
            is_job = _real_dir(entry)
            if not in_use and is_job:
                in_use = _held(entry / "render.lock")
            elif not in_use and STAGED_RE.fullmatch(entry.name):
                in_use = _held(entry)  # a live writer's staging file
            if in_use:
                kept.append(str(entry))
                continue
            removed.append(PrunedEntry(path=str(entry), bytes=size, age=round(now - newest, 1)))
            if not dry_run:
                if is_job:
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)  # a link is removed, never what it points at
                emptied.update(p for p in entry.parents if root in p.parents)
        if not dry_run:
            _remove_emptied(emptied, root)
    return PruneReport(
        roots=tuple(str(r) for r, _ in layout_roots), older_than=age, dry_run=dry_run,
        removed=tuple(removed), kept_in_use=tuple(kept),
    )
