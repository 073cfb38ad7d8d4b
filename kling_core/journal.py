"""A write-ahead journal of submitted jobs, so a job id or a finished result is never lost.

Before a submit goes out, the client records the client key with a hash of the request; the
host's job id is recorded before the first poll. A second submit under the same client key
returns the recorded job instead of posting again (or refuses when the request differs or the
first submit's outcome is unknown). Files are small JSON documents written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from kling_core.contract.models import EditRequest
from kling_core.files import write_text_atomic
from kling_core.provider import JobHandle
from kling_core.serialization import structure, unstructure

EntryState = Literal["submitting", "submitted", "uncertain", "succeeded", "failed", "cancelled"]


def state_dir() -> Path:
    env = os.environ.get("KLING_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kling"


def request_hash(request: EditRequest) -> str:
    doc = unstructure(request)
    doc.pop("client_key", None)
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


@attrs.frozen
class JournalEntry:
    client_key: str
    provider: str
    request_sha256: str
    state: EntryState
    handle: JobHandle | None = None
    result: Mapping[str, Any] | None = None  # EditResult document once succeeded
    error: str | None = None


class Journal:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or state_dir()) / "jobs"

    def _path(self, client_key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in client_key)
        return self.root / f"{safe}.json"

    def get(self, client_key: str) -> JournalEntry | None:
        path = self._path(client_key)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None
        entry: JournalEntry = structure(doc, JournalEntry, subject=str(path))
        return entry

    def put(self, entry: JournalEntry) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(unstructure(entry), indent=2, sort_keys=True)
        write_text_atomic(self._path(entry.client_key), text, perms=0o600)  # private: entries name jobs and result URLs

    def update(self, client_key: str, **changes: Any) -> JournalEntry | None:
        entry = self.get(client_key)
        if entry is None:
            return None
        entry = attrs.evolve(entry, **changes)
        self.put(entry)
        return entry

    def delete(self, client_key: str) -> None:
        self._path(client_key).unlink(missing_ok=True)

    def entries(self) -> Iterator[JournalEntry]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.json")):
            try:
                yield structure(json.loads(path.read_text()), JournalEntry)
            except Exception:  # a damaged entry must not hide the others
                continue

    def find_job(self, provider: str, job_id: str) -> JournalEntry | None:
        for entry in self.entries():
            if entry.provider == provider and entry.handle is not None and entry.handle.job_id == job_id:
                return entry
        return None
