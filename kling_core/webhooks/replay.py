"""Deliveries already acted on, so a replayed one is refused: a small SQLite file beside the job log.

A delivery is claimed (by scheme and delivery id) before it is acted on and released again
when acting failed in a way the sender should retry (a 503), so the host's retry is not
taken for a replay. Rows are kept for twice the timestamp window: older deliveries are
refused by their timestamp anyway. The file outlives the process, so a restart does not
reopen the window.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

DB_NAME = "webhooks.db"
_DDL = """
CREATE TABLE IF NOT EXISTS deliveries (
    scheme TEXT NOT NULL,
    id     TEXT NOT NULL,
    at     REAL NOT NULL,
    PRIMARY KEY (scheme, id)
);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (at);
"""


class ReplayStore:
    def __init__(self, path: Path, *, keep: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.keep = keep
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_DDL)

    def __repr__(self) -> str:
        return f"<ReplayStore {str(self.path)!r}>"

    def claim(self, scheme: str, delivery_id: str) -> bool:
        """True for a delivery not seen within the window (now claimed); False for a replay."""
        now = self._clock()
        with self._lock:
            self._conn.execute("DELETE FROM deliveries WHERE at < ?", (now - self.keep,))
            cursor = self._conn.execute("INSERT OR IGNORE INTO deliveries (scheme, id, at) VALUES (?, ?, ?)",
                                        (scheme, delivery_id, now))
            return cursor.rowcount == 1

    def release(self, scheme: str, delivery_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM deliveries WHERE scheme = ? AND id = ?", (scheme, delivery_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
