"""Mock jobs persisted as JSON, so any process can report, finish or cancel them by id.

Layout: ``<work dir>/jobs/<job id>/job.json`` (state, progress, request, result) plus
``render.lock``, held with ``flock`` by the process running the job. A job that is not
finished and whose lock nobody holds was left behind by a process that ended (a crash or a
``kill -9`` included: the kernel drops the lock with the process, and the ffmpeg child dies
with it); the next process that asks for it picks it up and renders it again from the start,
first removing the half-written render the dead one left (the render is deterministic, so
redoing it is safe).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import attrs

from kling_core.sdk import ProviderError, ValidationError, write_text_atomic

JOB_ID_RE = re.compile(r"mock-[0-9a-f]{20}")
CANCEL_MARKER = "cancel-requested"


def new_job_id() -> str:
    return f"mock-{secrets.token_hex(10)}"


def check_job_id(job_id: str) -> str:
    # The id becomes a folder name: refuse anything that is not one of ours (no "../").
    if not JOB_ID_RE.fullmatch(job_id):  # fullmatch: "$" would let a trailing newline in
        raise ValidationError.single("job_id", f"{job_id!r} is not a mock job id (mock- and 20 hex digits)")
    return job_id


@attrs.define
class JobRecord:
    job_id: str
    model: str
    state: str  # queued | running | succeeded | failed | cancelled
    submitted_at: float
    request: dict[str, Any]  # the canonical request, media as local absolute paths
    latency: float = 0.0
    fail: str | None = None
    retry_after: float = 5.0
    client_key: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    progress: float | None = None
    error: dict[str, Any] | None = None  # a JobError document
    result: dict[str, Any] | None = None  # an EditResult document

    @property
    def terminal(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")


_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _damaged(path: Path, why: str) -> ProviderError:
    return ProviderError(
        f"the job record {path} is damaged ({why}); the job cannot be followed: remove its folder "
        f"{path.parent} and submit the edit again",
        provider="mock",
        code="job_record_damaged",
        job_id=path.parent.name,
    )


class JobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, job_id: str) -> Path:
        return self.root / check_job_id(job_id)

    def exists(self, job_id: str) -> bool:
        return (self.dir(job_id) / "job.json").is_file()

    def load(self, job_id: str) -> JobRecord | None:
        path = self.dir(job_id) / "job.json"
        try:
            doc = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:  # not JSON or not UTF-8 (e.g. emptied by a power cut)
            raise _damaged(path, f"not a JSON document: {exc}") from None
        if not isinstance(doc, dict):
            raise _damaged(path, f"a JSON {type(doc).__name__}, not an object")
        missing = [a.name for a in attrs.fields(JobRecord) if a.default is attrs.NOTHING and a.name not in doc]
        if missing:
            raise _damaged(path, f"missing {', '.join(missing)}")
        if doc["job_id"] != job_id or doc["state"] not in _STATES or not _is_number(doc["submitted_at"]):
            raise _damaged(path, "its job_id, state or submitted_at is not a valid value")
        known = {a.name for a in attrs.fields(JobRecord)}
        return JobRecord(**{k: v for k, v in doc.items() if k in known})

    def save(self, record: JobRecord, *, durable: bool = True) -> None:
        """Replace the job's record. ``durable=False`` (progress on the way) skips the fsyncs:
        a power cut may take the record back to its previous state, which is re-rendered."""
        d = self.dir(record.job_id)
        d.mkdir(parents=True, exist_ok=True)
        # Readers never see a half-written record.
        write_text_atomic(d / "job.json", json.dumps(attrs.asdict(record), indent=1, sort_keys=True), durable=durable)

    # -- who is running the job ---------------------------------------------------------
    def acquire(self, job_id: str) -> int | None:
        """Take the job's render lock; the fd to release, or None if another holder has it."""
        d = self.dir(job_id)
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / "render.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def clear_partial(self, job_id: str, output_name: str) -> list[Path]:
        """Remove half-written renders of ``output_name`` left by a renderer that died.

        Only the holder of the job's render lock may call this: it alone renders the job, so
        every temporary render file in the folder is a dead process's leftover.
        """
        removed = []
        for leftover in self.dir(job_id).glob(f".{output_name}.*.part"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed.append(leftover)
        return removed

    @staticmethod
    def release(fd: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def is_running_elsewhere(self, job_id: str) -> bool:
        fd = self.acquire(job_id)
        if fd is None:
            return True
        self.release(fd)
        return False

    # -- cancellation across processes ---------------------------------------------------
    def request_cancel(self, job_id: str) -> None:
        (self.dir(job_id) / CANCEL_MARKER).touch()

    def cancel_requested(self, job_id: str) -> bool:
        return (self.dir(job_id) / CANCEL_MARKER).exists()
