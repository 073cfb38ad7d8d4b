"""The job log's SQLite schema and how every connection to it is set up.

WAL mode lets readers run beside the one writer, and several processes share the file; a
busy timeout makes a second writer wait instead of failing. ``synchronous=NORMAL`` keeps a
state change cheap (no fsync per commit): a committed change survives the process being
killed at any point; only an OS crash or power loss can drop the last few commits (never
corrupt the file). The two writes that protect money (the claim before a submit and the
job id right after it) ask for ``synchronous=FULL`` for their own commit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from kling_core.errors import ConfigError

VERSION = 2
# What each version added to a log written by the one before (see ``_upgrade``).
UPGRADES: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE jobs ADD COLUMN estimate TEXT", "ALTER TABLE jobs ADD COLUMN attempts TEXT"),
}
BUSY_TIMEOUT_S = 30.0

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    client_key     TEXT PRIMARY KEY,
    base_key       TEXT,
    take           INTEGER NOT NULL DEFAULT 1,
    provider       TEXT NOT NULL,
    model          TEXT,
    request        TEXT,
    request_sha256 TEXT NOT NULL,
    job_id         TEXT,
    handle         TEXT,
    state          TEXT NOT NULL,
    result         TEXT,
    cost           TEXT,
    estimate       TEXT,
    attempts       TEXT,
    output         TEXT,
    error          TEXT,
    owner          TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_job_id ON jobs (job_id);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_by_base ON jobs (base_key, take);
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_key TEXT NOT NULL REFERENCES jobs (client_key) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    at         REAL NOT NULL,
    detail     TEXT
);
CREATE INDEX IF NOT EXISTS events_by_key ON events (client_key, id);
-- The last take issued per derived key: forgetting a job never lets its key be issued again.
CREATE TABLE IF NOT EXISTS takes (
    base_key  TEXT PRIMARY KEY,
    last_take INTEGER NOT NULL
);
"""


T = TypeVar("T")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it private, 0600) the log at ``path`` with WAL and a busy timeout.

    A file that is not a job log this version can use (not SQLite, damaged, written by a newer
    kling-core) is a ConfigError naming it: the caller's state dir, not a bug.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # The log names jobs and signed result URLs: create it private before SQLite opens it
        # (SQLite gives the -wal and -shm files the database file's permissions).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        _set_up(conn)
    except ConfigError as exc:
        conn.close()
        raise ConfigError(exc.reason, file=str(path)) from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError):  # locked, unreadable, disk full: not the file's content
            raise
        raise ConfigError(f"not a usable job log ({exc}): move it aside (a new, empty log is made) "
                          "or set KLING_STATE_DIR to another directory", file=str(path)) from None
    return conn


def _set_up(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    _refuse_newer(conn.execute("PRAGMA user_version").fetchone()[0])  # before changing anything in it
    # WAL is a property of the file: set once, by whichever process gets there first. Switching
    # needs an exclusive lock that SQLite's busy handler does not wait for, so a process racing
    # another one's first open retries here until the busy timeout.
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        mode = _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    if str(mode).lower() != "wal":  # e.g. a file system without shared memory: still correct, slower
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode = DELETE").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _create(conn)


def _retry_locked(step: Callable[[], T]) -> T:
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _create(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == VERSION:
        return
    with transaction(conn):
        # Read again inside the write lock: another process may have created or upgraded it.
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found == VERSION:
            return
        if found == 0:
            for statement in DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
        else:
            _upgrade(conn, found)
        conn.execute(f"PRAGMA user_version = {VERSION}")


def _upgrade(conn: sqlite3.Connection, found: int) -> None:
    """Bring a log written by an older version up to this one, in the caller's transaction.

    A newer log than this code knows is refused rather than written with missing columns.
    """
    _refuse_newer(found)
    for version in range(found + 1, VERSION + 1):
        for statement in UPGRADES.get(version, ()):
            conn.execute(statement)


def _refuse_newer(found: int) -> None:
    if found > VERSION:
        raise ConfigError(f"job log version {found} is newer than this kling-core's ({VERSION}): upgrade "
                          "kling-core, or set KLING_STATE_DIR to another directory")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken up front (BEGIN IMMEDIATE) so writers queue, never deadlock.

    ``durable`` fsyncs this commit (``synchronous=FULL``) for the writes that must survive
    even a power loss.
    """
    if durable:
        conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if durable:
            conn.execute("PRAGMA synchronous = NORMAL")
