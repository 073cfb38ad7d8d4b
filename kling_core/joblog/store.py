"""The job log: one SQLite file under the state dir, shared safely by every kling process.

Writes are short ``BEGIN IMMEDIATE`` transactions (writers queue behind a busy timeout);
each state change is one row update plus one event row. The claim that reserves a key
before a submit is decided inside its transaction, so two processes running the same command
at once agree on one job.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from kling_core.contract.checks import is_utf8
from kling_core.errors import ValidationError
from kling_core.joblog.canonical import take_key
from kling_core.joblog.records import UNFINISHED, JobEvent, JobRecord
from kling_core.joblog.schema import connect, transaction
from kling_core.provider import JobHandle
from kling_core.serialization import structure, unstructure

DB_NAME = "jobs.db"
_JSON_FIELDS = ("request", "handle", "result", "cost", "estimate", "attempts")
_PLAIN_FIELDS = ("job_id", "output", "error", "model", "owner")


def state_dir() -> Path:
    """``$KLING_STATE_DIR``, else ``$XDG_STATE_HOME/kling``, else ``~/.local/state/kling``."""
    env = os.environ.get("KLING_STATE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "kling"


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process that wrote ``owner`` still runs: None when it is on another machine."""
    if not owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, JobHandle):
        value = unstructure(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _load(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _path_in(path: str | None) -> str | bytes | None:
    """A file path as the log keeps it: text, or, for a name that is not UTF-8 (Latin-1 bytes
    on Linux, decoded by Python with surrogateescape), its exact bytes as a BLOB, since SQLite
    text must be UTF-8. :func:`_path_out` gives back the same str, so the result is saved to
    the very file the user was told."""
    if path is None or is_utf8(path):
        return path
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:  # not a name the file system could hold: kept for display only
        return _shown(path)


def _path_out(value: str | bytes | None) -> str | None:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _shown(text: str | None) -> str | None:
    """Message text (an error, an event's detail) as SQLite can store it: a byte that is not
    UTF-8 (e.g. in a file name it quotes) shown as ``\\xe9``."""
    if text is None or is_utf8(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _handle(text: str | None) -> JobHandle | None:
    doc = _load(text)
    if doc is None:
        return None
    try:
        handle: JobHandle = structure(doc, JobHandle, subject="handle")
    except ValidationError:  # a damaged row must not hide the rest of the log
        return None
    return handle


class JobLog:
    """The jobs of one state dir (``root``; default :func:`state_dir`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else state_dir()
        self.path = self.root / DB_NAME
        self._conn: sqlite3.Connection | None = None
        self._salt: str | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<JobLog {str(self.path)!r}>"

    # -- connection -------------------------------------------------------------------
    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                conn = connect(self.path)
                from kling_core.joblog.migrate import migrate_json_journal

                migrate_json_journal(conn, self.root)
                self._conn = conn
            yield self._conn

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        with self._db() as conn, transaction(conn, durable=durable):
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._salt = None

    # -- reads ------------------------------------------------------------------------
    def _record(self, conn: sqlite3.Connection, row: sqlite3.Row, *, events: bool = True) -> JobRecord:
        history: tuple[JobEvent, ...] = ()
        if events:
            history = tuple(
                JobEvent(state=e["state"], at=e["at"], detail=e["detail"])
                for e in conn.execute("SELECT state, at, detail FROM events WHERE client_key = ? ORDER BY id",
                                      (row["client_key"],))
            )
        return JobRecord(
            client_key=row["client_key"], provider=row["provider"], state=row["state"],
            request_sha256=row["request_sha256"], created_at=row["created_at"], updated_at=row["updated_at"],
            model=row["model"], take=row["take"], base_key=row["base_key"], request=_load(row["request"]),
            job_id=row["job_id"], handle=_handle(row["handle"]), result=_load(row["result"]),
            cost=_load(row["cost"]), estimate=_load(row["estimate"]), attempts=tuple(_load(row["attempts"]) or ()),
            output=_path_out(row["output"]), error=row["error"], owner=row["owner"],
            events=history,
        )

    def get(self, client_key: str) -> JobRecord | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE client_key = ?", (client_key,)).fetchone()
            return self._record(conn, row) if row is not None else None

    def find(self, ref: str) -> list[JobRecord]:
        """Jobs named by ``ref``: a client key, else a host job id, else a unique key prefix."""
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE client_key = ?", (ref,)).fetchall()
            if not rows:
                rows = conn.execute("SELECT * FROM jobs WHERE job_id = ? ORDER BY created_at DESC", (ref,)).fetchall()
            if not rows and len(ref) >= 6:
                escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE client_key LIKE ? ESCAPE '\\' ORDER BY created_at DESC",
                    (escaped + "%",),
                ).fetchall()
            return [self._record(conn, row) for row in rows]

    def find_job(self, provider: str, job_id: str) -> JobRecord | None:
        with self._db() as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE provider = ? AND job_id = ? ORDER BY created_at DESC LIMIT 1",
                (provider, job_id),
            ).fetchone()
            return self._record(conn, row) if row is not None else None

    def latest(self, base_key: str) -> JobRecord | None:
        """The newest take of a derived key."""
        with self._db() as conn:
            row = self._latest(conn, base_key)
            return self._record(conn, row) if row is not None else None

    @staticmethod
    def _latest(conn: sqlite3.Connection, base_key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM jobs WHERE base_key = ? ORDER BY take DESC LIMIT 1", (base_key,)
        ).fetchone()
        return row

    def list(
        self,
        *,
        states: Collection[str] | None = None,
        provider: str | None = None,
        since: float | None = None,
        limit: int | None = None,
        events: bool = False,
    ) -> list[JobRecord]:
        """Jobs newest first; ``since`` is an epoch time (created at or after it)."""
        where: list[str] = []
        args: list[Any] = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += sorted(states)
        if provider:
            where.append("provider = ?")
            args.append(provider)
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        with self._db() as conn:
            return [self._record(conn, row, events=events) for row in conn.execute(sql, args).fetchall()]

    def salt(self) -> str:
        """A random value made once per log: derived keys differ between installations."""
        with self._db() as conn:
            if self._salt is not None:  # written once, never changed: read once per connection
                return self._salt
            row = conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
            if row is None:
                with transaction(conn):
                    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)",
                                 (secrets.token_hex(16),))
                row = conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
            self._salt = str(row[0])
            return self._salt

    # -- writes -----------------------------------------------------------------------
    def claim(
        self,
        *,
        provider: str,
        model: str | None,
        request: Mapping[str, Any],
        request_sha256: str,
        client_key: str | None = None,
        base_key: str | None = None,
        new: bool = False,
        output: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Reserve a key for a submit about to go out: ``(record, True)``, state ``submitting``.

        With an explicit ``client_key``: that key, unless a job holds it (``(that job,
        False)``). With a ``base_key`` (a key derived from the request): the newest take when
        it is unfinished (``(it, False)``: pick it up), else a new take (``new`` skips the
        pick-up). A submit the host refused outright (failed, no job id) frees its key again.
        """
        if (client_key is None) == (base_key is None):
            raise ValueError("claim() takes exactly one of client_key and base_key")
        now = time.time()
        with self._write(durable=True) as conn:
            if client_key is not None:
                row = conn.execute("SELECT * FROM jobs WHERE client_key = ?", (client_key,)).fetchone()
                if row is not None:
                    existing = self._record(conn, row)
                    same = existing.request_sha256 == request_sha256 and existing.provider == provider
                    if existing.created_on_host or not same:
                        return existing, False
                    self._reclaim(conn, client_key, output, now)
                    key = client_key
                else:
                    return self._insert(conn, client_key, None, 1, provider, model, request, request_sha256, output,
                                        now), True
            else:
                assert base_key is not None
                latest = None if new else self._latest(conn, base_key)
                if latest is not None and latest["state"] in UNFINISHED:
                    return self._record(conn, latest), False
                if latest is not None and latest["state"] == "failed" and latest["job_id"] is None:
                    key = latest["client_key"]
                    self._reclaim(conn, key, output, now)
                else:
                    take = self._next_take(conn, base_key, None if new else (latest["take"] if latest else 0))
                    key = take_key(base_key, take)
                    return self._insert(conn, key, base_key, take, provider, model, request, request_sha256, output,
                                        now), True
            row = conn.execute("SELECT * FROM jobs WHERE client_key = ?", (key,)).fetchone()
            return self._record(conn, row), True

    def _insert(self, conn: sqlite3.Connection, key: str, base: str | None, take: int, provider: str,
                model: str | None, request: Mapping[str, Any], digest: str, output: str | None,
                now: float) -> JobRecord:
        """Insert a new claim and return its record, built from what was written (not read back)."""
        stored, owner = _dump(request), owner_tag()
        conn.execute(
            "INSERT INTO jobs (client_key, base_key, take, provider, model, request, request_sha256, state, "
            "output, owner, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'submitting', ?, ?, ?, ?)",
            (key, base, take, provider, model, stored, digest, _path_in(output), owner, now, now),
        )
        conn.execute("INSERT INTO events (client_key, state, at, detail) VALUES (?, 'submitting', ?, NULL)", (key, now))
        return JobRecord(client_key=key, provider=provider, state="submitting", request_sha256=digest, created_at=now,
                         updated_at=now, model=model, take=take, base_key=base, request=_load(stored), output=output,
                         owner=owner, events=(JobEvent(state="submitting", at=now, detail=None),))

    def reclaim(self, client_key: str, *, output: str | None = None) -> bool:
        """Claim a key again for a new submit: its last one provably created no job.

        False when the job changed meanwhile (another process claimed it or stored an id).
        """
        with self._write(durable=True) as conn:
            row = conn.execute("SELECT state, job_id FROM jobs WHERE client_key = ?", (client_key,)).fetchone()
            if row is None or row["job_id"] is not None or row["state"] not in ("failed", "uncertain"):
                return False
            self._reclaim(conn, client_key, output, time.time())
            return True

    def _reclaim(self, conn: sqlite3.Connection, key: str, output: str | None, now: float) -> None:
        conn.execute(
            "UPDATE jobs SET state = 'submitting', error = NULL, owner = ?, output = COALESCE(?, output), "
            "updated_at = ? WHERE client_key = ?",
            (owner_tag(), _path_in(output), now, key),
        )
        conn.execute("INSERT INTO events (client_key, state, at, detail) VALUES (?, 'submitting', ?, ?)",
                     (key, now, "submitted again: no job was created before"))

    @staticmethod
    def _next_take(conn: sqlite3.Connection, base_key: str, held: int | None = None) -> int:
        """The next take of ``base_key``; ``held``: its highest take in the log, when just read."""
        issued = conn.execute("SELECT last_take FROM takes WHERE base_key = ?", (base_key,)).fetchone()
        if held is None:
            held = conn.execute("SELECT MAX(take) FROM jobs WHERE base_key = ?", (base_key,)).fetchone()[0]
        take = max(issued[0] if issued else 0, held or 0) + 1
        conn.execute(
            "INSERT INTO takes (base_key, last_take) VALUES (?, ?) "
            "ON CONFLICT (base_key) DO UPDATE SET last_take = excluded.last_take",
            (base_key, take),
        )
        return take

    def transition(
        self, client_key: str, state: str | None = None, *, detail: str | None = None, durable: bool = False,
        **fields: Any,
    ) -> bool:
        """Set fields (``handle``, ``result``, ``cost``, ``output``, ``error``, ...) and the state.

        A new state is recorded as an event with its time; the same state again only updates
        the fields. False when the log has no such key.
        """
        sets: list[str] = []
        args: list[Any] = []
        for name, value in fields.items():
            if name in _JSON_FIELDS:
                sets.append(f"{name} = ?")
                args.append(_dump(value))
                if name == "handle" and isinstance(value, JobHandle):
                    sets.append("job_id = ?")
                    args.append(value.job_id)
            elif name == "output":
                sets.append("output = ?")
                args.append(_path_in(value))
            elif name in _PLAIN_FIELDS:
                sets.append(f"{name} = ?")
                args.append(_shown(value) if name == "error" else value)
            else:
                raise TypeError(f"unknown job log field {name!r}")
        now = time.time()
        if state is not None:
            sets.append("state = ?")
            args.append(state)
        sets.append("updated_at = ?")
        args.append(now)
        with self._write(durable=durable) as conn:
            if state is not None:
                # The event only when the state changes, decided by the row itself (one statement,
                # before the update below changes it).
                conn.execute("INSERT INTO events (client_key, state, at, detail) SELECT client_key, ?, ?, ? FROM jobs "
                             "WHERE client_key = ? AND state != ?", (state, now, _shown(detail), client_key, state))
            found = conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE client_key = ?", (*args, client_key))
            return found.rowcount > 0

    def delete(self, client_key: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM jobs WHERE client_key = ?", (client_key,)).rowcount > 0

    def settle_stale(self) -> builtins.list[str]:
        """Mark ``submitting`` jobs whose process ended as ``uncertain``; return their keys."""
        with self._db() as conn:
            rows: list[sqlite3.Row] = conn.execute(
                "SELECT client_key, owner FROM jobs WHERE state = 'submitting'"
            ).fetchall()
        stale = [r["client_key"] for r in rows if owner_alive(r["owner"]) is False]
        for key in stale:
            self._mark_stale(key)
        return stale

    def _mark_stale(self, key: str) -> None:
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT state, owner FROM jobs WHERE client_key = ?", (key,)).fetchone()
            if row is None or row["state"] != "submitting" or owner_alive(row["owner"]) is not False:
                return  # changed meanwhile
            conn.execute("UPDATE jobs SET state = 'uncertain', updated_at = ? WHERE client_key = ?", (now, key))
            conn.execute("INSERT INTO events (client_key, state, at, detail) VALUES (?, 'uncertain', ?, ?)",
                         (key, now, "the process submitting it ended before the host answered"))
