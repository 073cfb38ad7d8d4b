"""A small, fast loopback host speaking fal's queue protocol, for the client benchmarks.

Run: python benchmarks/loopback_fal.py [--job-seconds S | --polls N] [--size BYTES]

Prints one JSON line (``{"port": P, "pid": ...}``) when it listens on 127.0.0.1, then serves
until stdin closes or SIGINT/SIGTERM. It is a separate process so the client's CPU and
memory are measured alone; plain asyncio streams, HTTP/1.1 keep-alive, no framework, so one
core answers thousands of requests a second (the emulator, ``kling emulate``, is the faithful
one; this one is for load).

- ``POST /<model id>`` creates a job: ``request_id``, ``status_url``, ``response_url``,
  ``cancel_url`` on this host;
- ``GET /fal-ai/kling-video/requests/<id>/status``: ``IN_PROGRESS`` (202) until the job is
  done, then ``COMPLETED`` (200). Done means ``--job-seconds`` after its submit, or (``--polls N``)
  at its Nth status request;
- ``GET /fal-ai/kling-video/requests/<id>``: ``{"video": {"url": …/files/<id>/output.mp4,
  "file_size": SIZE}}``;
- ``GET …/requests/<id>/status/stream``: server-sent status events (every 5 s, then
  ``COMPLETED``, then the connection closes); 404 in ``--polls`` mode;
- ``GET /files/<id>/output.mp4``: SIZE bytes (generated, sent in 64 KiB writes with flow control).

At exit it prints a JSON summary line to stderr: requests by kind, jobs created, the first and
last request times, and its own CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from typing import Any

APP = "fal-ai/kling-video"
CHUNK = 65536


class Host:
    def __init__(self, job_seconds: float | None, polls: int | None, size: int) -> None:
        self.job_seconds = job_seconds
        self.polls = polls
        self.size = size
        self.jobs: dict[str, list[float]] = {}  # id -> [created, status requests]
        self.counts: Counter[str] = Counter()
        self.first: float | None = None
        self.last: float | None = None
        self.base = ""
        self.block = bytes(range(256)) * (CHUNK // 256)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == "content-length:":
                        length = int(line[15:].strip())
                if length:
                    await reader.readexactly(length)
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                await self.answer(method, target.split("?", 1)[0], writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def answer(self, method: str, path: str, writer: asyncio.StreamWriter) -> None:
        if method == "POST":
            self.counts["submit"] += 1
            job = uuid.uuid4().hex
            self.jobs[job] = [time.monotonic(), 0]
            url = f"{self.base}/{APP}/requests/{job}"
            return self.json(writer, 200, {"request_id": job, "status_url": f"{url}/status", "response_url": url,
                                           "cancel_url": f"{url}/cancel", "queue_position": 0})
        if method == "GET" and path.startswith(f"/{APP}/requests/"):
            rest = path[len(f"/{APP}/requests/"):]
            job, _, tail = rest.partition("/")
            state = self.jobs.get(job)
            if state is None:
                return self.json(writer, 404, {"detail": "Request not found"})
            if tail == "status/stream":
                return await self.stream(job, state, writer)
            if tail == "status":
                self.counts["status"] += 1
                state[1] += 1
                done = (state[1] >= self.polls if self.polls is not None
                        else time.monotonic() - state[0] >= (self.job_seconds or 0))
                if done:
                    return self.json(writer, 200, {"status": "COMPLETED", "request_id": job, "logs": []})
                return self.json(writer, 202, {"status": "IN_PROGRESS", "request_id": job, "logs": []})
            self.counts["result"] += 1
            return self.json(writer, 200, {"video": {"url": f"{self.base}/files/{job}/output.mp4",
                                                     "file_size": self.size, "content_type": "video/mp4",
                                                     "file_name": "output.mp4"}})
        if method == "GET" and path.startswith("/files/"):
            self.counts["download"] += 1
            writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {self.size}\r\n\r\n".encode())
            left = self.size
            while left > 0:
                n = min(left, CHUNK)
                writer.write(self.block[:n])
                left -= n
                if writer.transport.get_write_buffer_size() > 4 * CHUNK:
                    await writer.drain()
            return None
        self.counts["other"] += 1
        return self.json(writer, 404, {"detail": "not found"})

    async def stream(self, job: str, state: list[float], writer: asyncio.StreamWriter) -> None:
        """fal's status stream: a status event now and every 5 s, COMPLETED when the job is
        done, then the connection closes (``--polls`` jobs: 404, so the client polls)."""
        self.counts["stream"] += 1
        if self.job_seconds is None:
            return self.json(writer, 404, {"detail": "no stream in --polls mode"})
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        while True:
            left = self.job_seconds - (time.monotonic() - state[0])
            status = "COMPLETED" if left <= 0 else "IN_PROGRESS"
            writer.write(f"data: {json.dumps({'status': status, 'request_id': job, 'logs': []})}\n\n".encode())
            await writer.drain()
            if status == "COMPLETED":
                writer.close()
                raise ConnectionResetError  # this connection is done
            await asyncio.sleep(min(5.0, left))

    @staticmethod
    def json(writer: asyncio.StreamWriter, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        reason = {200: "OK", 202: "Accepted", 404: "Not Found"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(body)}\r\n\r\n".encode() + body)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job-seconds", type=float, default=None)
    parser.add_argument("--polls", type=int, default=None)
    parser.add_argument("--size", type=int, default=65536)
    args = parser.parse_args()
    host = Host(args.job_seconds, args.polls if args.job_seconds is None else None, args.size)
    server = await asyncio.start_server(host.serve, "127.0.0.1", 0, backlog=4096, limit=2**20)
    port = server.sockets[0].getsockname()[1]
    host.base = f"http://127.0.0.1:{port}"
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1024) else None)
    async with server:
        await stop.wait()
    usage = os.times()
    print(json.dumps({"counts": host.counts, "jobs": len(host.jobs), "cpu_s": round(usage.user + usage.system, 2),
                      "span_s": round((host.last or 0) - (host.first or 0), 2)}), file=sys.stderr, flush=True)


class Server(contextlib.AbstractContextManager["Server"]):
    """This host as a child process of a benchmark: ``with Server(...) as s: s.base``."""

    def __init__(self, *args: str) -> None:
        import subprocess

        self.proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.port, self.pid = info["port"], info["pid"]
        self.base = f"http://127.0.0.1:{self.port}"
        self.summary: dict[str, Any] = {}

    def __exit__(self, *exc: object) -> None:
        try:
            _out, err = self.proc.communicate(timeout=30)  # closes stdin: the host stops
        except Exception:
            self.proc.kill()
            raise
        lines = [line for line in err.decode().splitlines() if line.startswith("{")]
        self.summary = json.loads(lines[-1]) if lines else {"stderr": err.decode()[-2000:]}


if __name__ == "__main__":
    asyncio.run(main())
