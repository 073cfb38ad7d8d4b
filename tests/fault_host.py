"""A loopback host speaking fal's queue protocol, with faults injected request by request.

The protocol is the one ``kling_core_plugins.fal`` speaks (its cassettes give the shapes):

- ``POST /<model id>`` (e.g. ``/fal-ai/kling-video/o1/video-to-video/edit``) creates a job and
  answers ``request_id`` plus ``status_url``, ``response_url`` and ``cancel_url`` on this host;
- ``GET …/requests/<id>/status`` answers ``IN_QUEUE`` (202), ``IN_PROGRESS`` (202), then
  ``COMPLETED`` (200);
- ``GET …/requests/<id>`` answers ``{"video": {"url": <this host>/files/<id>/output.mp4,
  "file_size": N}}``;
- ``PUT …/requests/<id>/cancel`` answers ``CANCELLATION_REQUESTED``;
- ``GET /files/<id>/output.mp4`` serves the output video; ``GET /media/input.mp4`` the input.

A :class:`Script` lists faults per phase (``submit``, ``status``, ``result``, ``download``),
each consumed by the next request of that phase. The host counts jobs created per submit
body digest (a second job for one body is a duplicate paid submit), remembers whether each
job's id reached the client, and logs every request. It is bounded: past ``max_requests`` it
refuses (503, counted in ``capped``), and it stops itself ``lifetime`` seconds after start.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

APP = "fal-ai/kling-video"
FAKE_KEY = "fake-fal-key-0d1f2e3c4b5a69788796a5b4c3d2e1f0"
PROMPT = "Turn the sky into a sunset"

# What each phase can be made to do instead of answering normally.
FAULTS: Mapping[str, tuple[str, ...]] = {
    # answer_lost/timeout: the job IS created, its id never reaches the client;
    # error_500/error_503: refused, no job created; hold: created, then stalls (SIGKILL tests).
    "submit": ("answer_lost", "error_500", "error_503", "timeout"),
    "status": ("error_503", "rate_limited", "dropped", "timeout"),
    "result": ("error_500", "dropped"),
    # truncated: Content-Length says N, half is sent, then the connection closes;
    # close_truncated: no Content-Length, half is sent, then a clean close (looks complete);
    # not_video: N bytes (the right size) that are no video at all.
    "download": ("truncated", "close_truncated", "not_video", "error_503"),
}
# Not drawn at random, for the SIGKILL tests: submit "hold" (created, then the answer waits until
# released) and download "stall" (half the body, then nothing until released).
CREATES_JOB = frozenset({"answer_lost", "timeout", "hold"})


@attrs.frozen
class Fault:
    phase: str
    kind: str
    arg: float = 0.0  # Retry-After seconds for error_503/rate_limited

    def __str__(self) -> str:
        return f"{self.phase}.{self.kind}" + (f"({self.arg:g})" if self.arg else "")


@attrs.frozen
class Script:
    """Faults in the order they hit, plus how the host describes its output."""

    faults: tuple[Fault, ...] = ()
    report_size: bool = True  # the result names file_size
    content_length: bool = True  # a normal download carries Content-Length (else close-delimited)
    queue_polls: int = 1  # status answers IN_QUEUE this many times ...
    progress_polls: int = 1  # ... then IN_PROGRESS this many times, then COMPLETED
    result_url: str | None = None  # override the result's video URL ("{base}" is this host)

    def describe(self) -> str:
        parts = [str(f) for f in self.faults] or ["no faults"]
        parts.append(f"size={'yes' if self.report_size else 'no'}")
        parts.append(f"content-length={'yes' if self.content_length else 'no'}")
        parts.append(f"polls={self.queue_polls}+{self.progress_polls}")
        if self.result_url:
            parts.append(f"result_url={self.result_url}")
        return ", ".join(parts)


@attrs.define
class Job:
    request_id: str
    digest: str
    delivered: bool = False  # the submit answer (with the id) was written to the client
    polls: int = 0  # normal status answers given
    hold_running: bool = False


@attrs.frozen
class Logged:
    at: float
    method: str
    path: str
    phase: str
    fault: str | None
    status: int | None  # None: no answer (dropped, stalled, timed out)
    authorized: bool


class FaultHost:
    """Start with :meth:`start` (or as a context manager); stop with :meth:`stop`."""

    def __init__(
        self,
        video: bytes,
        *,
        input_video: bytes | None = None,
        script: Script | None = None,
        client_timeout: float = 1.0,
        max_requests: int = 300,
        lifetime: float = 120.0,
    ) -> None:
        self.video = video
        self.input_video = input_video if input_video is not None else video
        self.script = script or Script()
        self.client_timeout = client_timeout
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.pending: dict[str, deque[Fault]] = {p: deque() for p in ("submit", "status", "result", "download")}
        for fault in self.script.faults:
            self.pending[fault.phase].append(fault)
        self.jobs: dict[str, Job] = {}
        self.created: Counter[str] = Counter()  # body digest -> jobs created
        self.posted: Counter[str] = Counter()  # body digest -> submit requests seen
        self.log: list[Logged] = []
        self.capped = 0
        self.expired = False
        self.hold_running = False  # status answers IN_PROGRESS until release_running()
        self._cond = threading.Condition()
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.port = 0

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> FaultHost:
        host = self

        class Handler(_Handler):
            fault_host = host

        server = _Server(("127.0.0.1", 0), Handler)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _expire(self) -> None:
        self.expired = True
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def __enter__(self) -> FaultHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def input_url(self) -> str:
        return f"{self.base_url}/media/input.mp4"

    def request_url(self, request_id: str, tail: str = "") -> str:
        return f"{self.base_url}/{APP}/requests/{request_id}{tail}"

    def output_url(self, request_id: str) -> str:
        return f"{self.base_url}/files/{request_id}/output.mp4"

    # -- what the test asks -----------------------------------------------------------
    def release(self) -> None:
        """Let stalled handlers (hold, stall) finish."""
        self._release.set()

    def release_running(self) -> None:
        with self._cond:
            self.hold_running = False

    def faults_left(self) -> list[Fault]:
        with self._cond:
            return [f for q in self.pending.values() for f in q]

    def add_faults(self, faults: Sequence[Fault]) -> None:
        with self._cond:
            for fault in faults:
                self.pending[fault.phase].append(fault)

    def duplicates(self) -> dict[str, int]:
        """Body digests with more than one job created (a second paid job)."""
        with self._cond:
            return {d: n for d, n in self.created.items() if n > 1}

    def api_requests(self) -> int:
        with self._cond:
            return sum(1 for e in self.log if e.phase in ("submit", "status", "result", "download", "cancel"))

    def seen(self, phase: str) -> int:
        with self._cond:
            return sum(1 for e in self.log if e.phase == phase)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def summary(self) -> str:
        with self._cond:
            lines = [f"{e.at:7.3f} {e.method} {e.path} [{e.phase}] fault={e.fault} -> {e.status}" for e in self.log]
        return "\n".join(lines[-60:])

    # -- bookkeeping used by the handler -------------------------------------------------
    def _note(self, entry: Logged) -> None:
        with self._cond:
            self.log.append(entry)
            self._cond.notify_all()

    def _admit(self) -> bool:
        with self._cond:
            if len(self.log) >= self.max_requests:
                self.capped += 1
                return False
            return True

    def _next_fault(self, phase: str) -> Fault | None:
        with self._cond:
            queue = self.pending[phase]
            return queue.popleft() if queue else None

    def _create(self, digest: str) -> Job:
        with self._cond:
            job = Job(request_id=str(uuid.uuid4()), digest=digest)
            self.jobs[job.request_id] = job
            self.created[digest] += 1
            self._cond.notify_all()
            return job

    def _delivered(self, job: Job) -> None:
        with self._cond:
            job.delivered = True
            self._cond.notify_all()

    def _hold(self, seconds: float | None = None) -> None:
        """Stall until released or stopped (or ``seconds`` pass)."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self._stopping.is_set():
            if end is None:
                if self._release.wait(0.05):
                    return
            else:
                left = end - time.monotonic()
                if left <= 0 or self._stopping.wait(min(left, 0.05)):
                    return


def body_digest(raw: bytes) -> str:
    """The submit body's identity, independent of key order and spacing."""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (killed, timed out) is what these tests do on purpose.
        pass


_REQUEST_RE = re.compile(rf"^/{re.escape(APP)}/requests/([0-9a-f-]+)(/status|/cancel)?$")
_FILE_RE = re.compile(r"^/files/([0-9a-f-]+)/output\.mp4$")


class _Handler(http.server.BaseHTTPRequestHandler):
    fault_host: FaultHost
    protocol_version = "HTTP/1.1"
    timeout = 30  # a connection idle this long is dropped

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ---------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close without answering (the client sees the connection end)."""
        self.close_connection = True

    def _log(self, phase: str, fault: Fault | None, status: int | None) -> None:
        host = self.fault_host
        auth = self.headers.get("authorization") == f"Key {FAKE_KEY}"
        host._note(Logged(time.monotonic(), self.command, self.path, phase, str(fault) if fault else None, status, auth))

    def _phase(self) -> tuple[str, str | None]:
        path = self.path.split("?", 1)[0]
        if self.command == "POST" and path.startswith(f"/{APP}/") and "/requests/" not in path:
            return "submit", None
        m = _REQUEST_RE.match(path)
        if m:
            tail = m.group(2)
            if tail == "/status" and self.command == "GET":
                return "status", m.group(1)
            if tail == "/cancel" and self.command == "PUT":
                return "cancel", m.group(1)
            if tail is None and self.command == "GET":
                return "result", m.group(1)
        m = _FILE_RE.match(path)
        if m and self.command == "GET":
            return "download", m.group(1)
        if path == "/media/input.mp4" and self.command == "GET":
            return "input", None
        return "unknown", None

    def _handle(self) -> None:
        host = self.fault_host
        body = self._body() if self.command in ("POST", "PUT") else b""
        phase, request_id = self._phase()
        if not host._admit():
            self._log(phase, None, 503)
            self._json(503, {"detail": "fault host: request cap reached"}, {"x-fault-host": "cap"})
            return
        if phase in ("submit", "status", "result", "cancel") and self.headers.get("authorization") != f"Key {FAKE_KEY}":
            self._log(phase, None, 401)
            self._json(401, {"detail": "No user found for Key ID and Secret"})
            return
        if phase == "submit":
            self._submit(body)
        elif phase == "input":
            self._log(phase, None, 200)
            self._bytes(host.input_video)
        elif phase == "unknown" or request_id is None or request_id not in host.jobs:
            self._log(phase, None, 404)
            self._json(404, {"detail": "Request not found"})
        elif phase == "status":
            self._status(host.jobs[request_id])
        elif phase == "result":
            self._result(host.jobs[request_id])
        elif phase == "cancel":
            self._log(phase, None, 202)
            self._json(202, {"status": "CANCELLATION_REQUESTED"})
        else:
            self._download(host.jobs[request_id])

    do_GET = do_POST = do_PUT = _handle

    # -- phases -----------------------------------------------------------------------
    def _submit(self, body: bytes) -> None:
        host = self.fault_host
        digest = body_digest(body)
        with host._cond:
            host.posted[digest] += 1
        fault = host._next_fault("submit")
        kind = fault.kind if fault else None
        if kind == "error_500":
            self._log("submit", fault, 500)
            self._json(500, {"detail": "Internal Server Error"})
            return
        if kind == "error_503":
            self._log("submit", fault, 503)
            self._json(503, {"detail": "Failed to schedule a runner", "error_type": "runner_scheduling_failure"},
                       {"x-fal-error-type": "runner_scheduling_failure"})
            return
        job = host._create(digest)
        if kind in CREATES_JOB:
            self._log("submit", fault, None)
            if kind == "timeout":
                host._hold(host.client_timeout + 0.5)
            elif kind == "hold":
                host._hold()
            self._drop()
            return
        doc = {
            "status": "IN_QUEUE",
            "queue_position": 0,
            "request_id": job.request_id,
            "status_url": host.request_url(job.request_id, "/status"),
            "response_url": host.request_url(job.request_id),
            "cancel_url": host.request_url(job.request_id, "/cancel"),
        }
        self._log("submit", None, 200)
        self._json(200, doc)
        host._delivered(job)

    def _status(self, job: Job) -> None:
        host = self.fault_host
        fault = host._next_fault("status")
        kind = fault.kind if fault else None
        if kind == "error_503":
            self._log("status", fault, 503)
            self._json(503, {"detail": "Service Unavailable"}, {"retry-after": f"{fault.arg:g}"} if fault else None)
            return
        if kind == "rate_limited":
            self._log("status", fault, 429)
            self._json(429, {"detail": "Rate limit exceeded"}, {"retry-after": f"{fault.arg:g}"} if fault else None)
            return
        if kind in ("dropped", "timeout"):
            self._log("status", fault, None)
            if kind == "timeout":
                host._hold(host.client_timeout + 0.5)
            self._drop()
            return
        script = host.script
        urls = {
            "request_id": job.request_id,
            "status_url": host.request_url(job.request_id, "/status"),
            "response_url": host.request_url(job.request_id),
            "cancel_url": host.request_url(job.request_id, "/cancel"),
        }
        with host._cond:
            n = job.polls
            job.polls += 1
            holding = host.hold_running
        if n < script.queue_polls:
            doc: dict[str, Any] = {"status": "IN_QUEUE", "queue_position": script.queue_polls - n - 1, **urls}
            code = 202
        elif holding or n < script.queue_polls + script.progress_polls:
            doc = {"status": "IN_PROGRESS", "logs": [{"message": "Generating video", "level": "INFO",
                                                      "source": "USER", "timestamp": "2026-09-01T10:00:00Z"}], **urls}
            code = 202
        else:
            doc = {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 1.0}, "error": None,
                   "error_type": None, **urls}
            code = 200
        self._log("status", None, code)
        self._json(code, doc)

    def _result(self, job: Job) -> None:
        host = self.fault_host
        fault = host._next_fault("result")
        kind = fault.kind if fault else None
        if kind == "error_500":
            self._log("result", fault, 500)
            self._json(500, {"detail": "Internal Server Error"})
            return
        if kind == "dropped":
            self._log("result", fault, None)
            self._drop()
            return
        script = host.script
        url = script.result_url.replace("{base}", host.base_url) if script.result_url else host.output_url(job.request_id)
        video: dict[str, Any] = {"url": url, "content_type": "video/mp4", "file_name": "output.mp4"}
        if script.report_size:
            video["file_size"] = len(host.video)
        self._log("result", None, 200)
        self._json(200, {"video": video})

    def _bytes(self, data: bytes, *, length: bool = True) -> None:
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        if length:
            self.send_header("content-length", str(len(data)))
        else:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _download(self, job: Job) -> None:
        host = self.fault_host
        fault = host._next_fault("download")
        kind = fault.kind if fault else None
        data = host.video
        half = data[: len(data) // 2]
        if kind == "error_503":
            self._log("download", fault, 503)
            self._json(503, {"detail": "Service Unavailable"}, {"retry-after": "0"})
            return
        if kind in ("truncated", "stall"):
            self._log("download", fault, 200)
            self.send_response(200)
            self.send_header("content-type", "video/mp4")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(half)
            self.wfile.flush()
            if kind == "stall":
                with host._cond:
                    host._cond.notify_all()
                host._hold()
            self._drop()
            return
        if kind == "close_truncated":
            self._log("download", fault, 200)
            self._bytes(half, length=False)
            return
        if kind == "not_video":
            junk = (b"<html><body>The page you requested is being generated.</body></html>\n" * (len(data) // 64 + 1))
            self._log("download", fault, 200)
            self._bytes(junk[: len(data)], length=host.script.content_length)
            return
        self._log("download", None, 200)
        self._bytes(data, length=host.script.content_length)


# -- the CLI side: an isolated workspace per run ----------------------------------------------


@attrs.define
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def __str__(self) -> str:
        tail = self.stderr.strip().splitlines()[-6:]
        return f"kling {' '.join(self.argv)} -> exit {self.returncode} in {self.seconds:.1f}s: " + " | ".join(tail)


@attrs.define
class Workspace:
    """A folder with its own kling.toml, state and cache dirs; runs ``kling`` as a user would."""

    root: Path
    config: str
    extra_env: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def create(cls, root: Path, config: str, **env: str) -> Workspace:
        for sub in ("cwd", "state", "cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "cwd" / "kling.toml").write_text(config)
        return cls(root, config, dict(env))

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("KLING_") and k not in ("FAL_KEY", "SEGMIND_API_KEY", "UNIFICALLY_API_KEY")}
        # Nothing of the user's: state, caches and any user-level config live in the workspace.
        env.update(KLING_STATE_DIR=str(self.state_dir), KLING_CACHE_DIR=str(self.cache_dir),
                   KLING_CONFIG_DIR=str(self.root / "user-config"), XDG_CONFIG_HOME=str(self.root / "xdg-config"),
                   FAL_KEY=FAKE_KEY, PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        return env

    def popen(self, argv: Sequence[str]) -> subprocess.Popen[str]:
        """``kling ARGV`` in its own process group (so a SIGKILL can reach all of it)."""
        return subprocess.Popen(
            [sys.executable, "-m", "kling_core", *argv], cwd=self.cwd, env=self.env(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def run(self, argv: Sequence[str], *, timeout: float = 90.0) -> Run:
        started = time.monotonic()
        proc = self.popen(argv)
        try:
            out, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            timed_out = True
        return Run(list(argv), proc.returncode, out, err, time.monotonic() - started, timed_out)

    def jobs(self) -> tuple[list[dict[str, Any]] | None, Run]:
        """``kling jobs --json`` as a list of entries (None when it is not a readable listing)."""
        run = self.run(["jobs", "--json"], timeout=60)
        if run.returncode != 0:
            return None, run
        try:
            doc = json.loads(run.stdout)
        except ValueError:
            return None, run
        return job_entries(doc), run


def job_entries(doc: Any) -> list[dict[str, Any]] | None:
    """The entries of a ``kling jobs --json`` document: a list, or an object holding one."""
    if isinstance(doc, dict):
        for key in ("jobs", "items", "entries"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        return None
    return doc


def entry_job_id(entry: Mapping[str, Any]) -> str | None:
    for key in ("job_id", "host_job_id", "request_id"):
        if isinstance(entry.get(key), str):
            return str(entry[key])
    handle = entry.get("handle")
    if isinstance(handle, Mapping) and isinstance(handle.get("job_id"), str):
        return str(handle["job_id"])
    return None


def entry_key(entry: Mapping[str, Any]) -> str | None:
    for key in ("client_key", "key"):
        if isinstance(entry.get(key), str):
            return str(entry[key])
    return None


def entry_state(entry: Mapping[str, Any]) -> str | None:
    state = entry.get("state")
    return state if isinstance(state, str) else None


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group ``proc`` leads (the CLI and any child that stayed in it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def part_files(out: Path) -> list[Path]:
    """Temporary files left beside ``out`` (``.NAME.<hex>.part`` and any other ``*.part``)."""
    if not out.parent.is_dir():
        return []
    return sorted(p for p in out.parent.iterdir() if p.name.endswith(".part") or p.name.startswith(f".{out.name}."))


def decode_problems(ffmpeg: str, path: Path) -> str | None:
    """None when ffmpeg decodes the whole file without a complaint; else what it said."""
    proc = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-i", f"file:{path}", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode == 0 and not proc.stderr.strip():
        return None
    return f"exit {proc.returncode}: {proc.stderr.strip()[:300]}"


def processes_mentioning(needle: str, *, name: str | None = None) -> list[tuple[int, str]]:
    """Live processes (pid, argv) whose argv contains ``needle`` (and whose argv[0] contains ``name``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if not raw or stat.rpartition(")")[2].split()[:1] == ["Z"]:
            continue  # gone, or a zombie (dead; only its exit status is left)
        argv = raw.rstrip(b"\0").split(b"\0")
        text = " ".join(a.decode("utf-8", "replace") for a in argv)
        if needle in text and (name is None or name in argv[0].decode("utf-8", "replace")):
            found.append((int(entry.name), text))
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # fields: state ppid pgrp ...
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def fal_config(host: FaultHost, *, timeout: float = 1.0, download_timeout: float = 2.0) -> str:
    """A kling.toml pointing fal at ``host``, with short timeouts and brisk polling."""
    return f"""\
default_provider = "fal"

[media]
allow_private_urls = true
download_timeout = {download_timeout}

[providers.fal]
key = "env:FAL_KEY"
base_url = "{host.base_url}"
timeout = {timeout}

[providers.fal.poll]
initial = 0.05
factor = 1.5
max = 0.2
jitter = 0.0
deadline = 60
status_retries = 5
max_retry_after = 5
"""


def edit_argv(host: FaultHost, out: Path, *extra: str) -> list[str]:
    return ["edit", host.input_url, "-p", PROMPT, "--provider", "fal", "-o", str(out), "-q", *extra]


# -- media ------------------------------------------------------------------------------------


@attrs.frozen
class Videos:
    """The input clip a command names, and the output video the host serves (a different clip)."""

    input: bytes
    output: bytes
    ffmpeg: str


def make_videos(folder: Path) -> Videos:
    """Small real MP4s: the input (3.2 s, 1280x720) and the output (3.2 s, 640x360, moov first,
    as CDNs serve them: a truncated copy still opens, only a full decode shows the damage)."""
    from kling_core.media.locate import find_ffmpeg
    from kling_core.media.samples import generate, make_clip

    ffmpeg = find_ffmpeg()
    clip = make_clip(folder / "input.mp4", duration=3.2, size=(1280, 720), fps=24, audio=True)
    raw = make_clip(folder / "raw-output.mp4", duration=3.2, size=(640, 360), fps=24, audio=True)
    out = generate(ffmpeg, ["-i", f"file:{raw}", "-c", "copy", "-movflags", "+faststart"], folder / "output.mp4",
                   fmt="mp4")
    return Videos(clip.read_bytes(), out.read_bytes(), ffmpeg)
