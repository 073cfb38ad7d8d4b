"""One-time move of the old per-key JSON journal (``<state dir>/jobs/*.json``) into the log.

Run when the log is opened and the old folder exists. Every entry is inserted (an entry
already in the log is left alone), in one transaction, and only then is the folder renamed
to ``jobs.migrated`` (never deleted). Safe when several processes open the log at once:
the inserts are idempotent and a rename that lost the race is ignored.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from kling_core.contract.models import EditRequest
from kling_core.joblog.canonical import json_digest
from kling_core.joblog.schema import transaction
from kling_core.serialization import unstructure

log = logging.getLogger(__name__)
LEGACY = "legacy:"
# Old states -> log states. "submitting" was left only by a process that died mid-submit, and
# an old "succeeded" entry does not say whether the result was saved.
_STATES = {"submitting": "uncertain", "submitted": "submitted", "uncertain": "uncertain",
           "succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}


def legacy_request_hash(request: EditRequest) -> str:
    """The old journal's request hash, so a migrated key still matches its own request."""
    doc = unstructure(request)
    doc.pop("client_key", None)
    return LEGACY + json_digest(doc)


def _row(doc: dict[str, Any], path: Path) -> tuple[Any, ...] | None:
    key, provider, digest = doc.get("client_key"), doc.get("provider"), doc.get("request_sha256")
    if not all(isinstance(v, str) and v for v in (key, provider, digest)):
        return None
    handle = doc.get("handle") if isinstance(doc.get("handle"), dict) else None
    result = doc.get("result") if isinstance(doc.get("result"), dict) else None
    job_id = handle.get("job_id") if handle else None
    model = (handle or {}).get("model") or (result or {}).get("model")
    state = _STATES.get(str(doc.get("state")), "uncertain")
    when = path.stat().st_mtime
    cost = result.get("cost") if result else None
    return (key, provider, model, LEGACY + str(digest), job_id,
            json.dumps(handle) if handle else None, state,
            json.dumps(result) if result else None, json.dumps(cost) if cost else None,
            doc.get("error") if isinstance(doc.get("error"), str) else None, when, when)


def migrate_json_journal(conn: sqlite3.Connection, root: Path) -> int:
    """Import ``root/jobs/*.json`` into the log, then rename the folder; return the count."""
    folder = root / "jobs"
    if not folder.is_dir():
        return 0
    count = 0
    with transaction(conn, durable=True):
        for path in sorted(folder.glob("*.json")):
            try:
                doc = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                log.warning("job log migration: skipped unreadable %s", path)
                continue
            row = _row(doc, path) if isinstance(doc, dict) else None
            if row is None:
                log.warning("job log migration: skipped %s (not a journal entry)", path)
                continue
            cur = conn.execute(
                "INSERT OR IGNORE INTO jobs (client_key, provider, model, request_sha256, job_id, handle, state, "
                "result, cost, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if cur.rowcount:
                conn.execute("INSERT INTO events (client_key, state, at, detail) VALUES (?, ?, ?, ?)",
                             (row[0], row[6], row[10], f"migrated from {path.name}"))
                count += 1
    target = root / "jobs.migrated"
    n = 2
    while target.exists():
        target = root / f"jobs.migrated-{n}"
        n += 1
    try:
        folder.rename(target)
    except FileNotFoundError:  # another process migrated and moved it first
        return count
    except OSError as exc:
        log.warning("job log migration: could not move %s aside: %s", folder, exc)
        return count
    log.info("migrated %d journal entries into %s; the old files are in %s", count, root, target)
    return count
