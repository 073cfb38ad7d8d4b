"""CPU per complete job: the kling client against a raw httpx loop, on a loopback fal host.

Run: python benchmarks/bench_cpu_per_job.py [--jobs 200] [--rounds 5] [--size 65536] [--check]

A job is: submit, 2 status polls (the host answers IN_PROGRESS, then COMPLETED), the result
GET, and the download of its ``--size``-byte video to a file. The host
(``benchmarks/loopback_fal.py``) is its own process, so only the client's CPU is counted
(``time.process_time``: this process, every thread).

- **raw httpx**: one ``httpx.AsyncClient``, the five requests by hand, the body streamed to a file;
- **raw httpx + durable writes**: the same loop plus the durable writes kling makes per job, done
  by hand at their cheapest: four one-statement commits to a SQLite WAL file (the claim and the
  job id with ``synchronous=FULL``, ``running`` and the result with ``NORMAL``: the job log's
  policy), and the body written to a temporary file, fsynced, renamed, its folder fsynced. This
  is the floor for any client that keeps crash safety; kling's own overhead is its distance
  from this line;
- **kling**: ``AsyncEditClient.edit`` on provider ``fal`` (base URL = the loopback host; polls
  back to back, ``poll.initial = poll.max = 0``, no status stream, as the raw loop): the request built and checked, the job claimed
  in the SQLite job log, submitted, polled, its result fetched, every state change logged;
  then :func:`kling_core.http.download` (the guarded fetch result saves use: address checked
  and pinned, size-capped, streamed to a ``.part`` file, fsynced, renamed). Not included: the
  ffmpeg probe that ``save`` runs on a result (that is media work, not HTTP);
- **kling, no job log**: the same with ``use_journal=False``.

Jobs run one after another; the variants take turns, ``--rounds`` times, and the median CPU
per job of each is printed with its ratio to raw httpx (target: kling at most 1.3×) and to the
durable floor. Then the
job log alone: the CPU and wall time of one state change (``JobLog.transition``), plain and
durable (fsynced), and of one claim, over ``--log-ops`` operations in a fresh log.
``--check`` exits 1 when kling is above 1.3×.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kling_core_plugins.fal.endpoints import ENDPOINTS
from loopback_fal import Server

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.http import download
from kling_core.joblog import JobLog

VIDEO = "https://media.example.com/input.mp4"
KEY = "bench-key:bench-secret"
TARGET = 1.3

Job = Callable[[int], Awaitable[None]]


def raw_job(client: httpx.AsyncClient, base: str, out: Path) -> Job:
    endpoint = ENDPOINTS[("kling-o1", "edit", "std")]
    headers = {"authorization": f"Key {KEY}"}

    async def job(i: int) -> None:
        r = await client.post(f"{base}/{endpoint}", json={"prompt": f"job {i}", "video_url": VIDEO}, headers=headers)
        doc = r.json()
        for _ in range(2):
            s = await client.get(doc["status_url"], params={"logs": "1"}, headers=headers)
            s.raise_for_status()
        assert s.json()["status"] == "COMPLETED"
        result = (await client.get(doc["response_url"], headers=headers)).json()
        async with client.stream("GET", result["video"]["url"]) as body:
            with open(out / f"raw-{i}.mp4", "wb") as fh:
                async for chunk in body.aiter_bytes(65536):
                    fh.write(chunk)

    return job


def durable_job(client: httpx.AsyncClient, base: str, out: Path, db: sqlite3.Connection) -> Job:
    """:func:`raw_job` plus the durable writes kling makes per job, each at its cheapest."""
    endpoint = ENDPOINTS[("kling-o1", "edit", "std")]
    headers = {"authorization": f"Key {KEY}"}

    def commit(sql: str, args: tuple[object, ...], full: bool) -> None:
        if full:
            db.execute("PRAGMA synchronous = FULL")
        db.execute("BEGIN IMMEDIATE")
        db.execute(sql, args)
        db.execute("COMMIT")
        if full:
            db.execute("PRAGMA synchronous = NORMAL")

    async def job(i: int) -> None:
        key = f"{i}-{time.monotonic_ns()}"
        commit("INSERT INTO jobs (key, state) VALUES (?, 'submitting')", (key,), True)
        r = await client.post(f"{base}/{endpoint}", json={"prompt": f"job {i}", "video_url": VIDEO}, headers=headers)
        doc = r.json()
        commit("UPDATE jobs SET state = 'submitted', job_id = ? WHERE key = ?", (doc["request_id"], key), True)
        for n in range(2):
            s = await client.get(doc["status_url"], params={"logs": "1"}, headers=headers)
            s.raise_for_status()
            if n == 0:
                commit("UPDATE jobs SET state = 'running' WHERE key = ?", (key,), False)
        assert s.json()["status"] == "COMPLETED"
        result = (await client.get(doc["response_url"], headers=headers)).json()
        commit("UPDATE jobs SET state = 'succeeded', result = ? WHERE key = ?", (json.dumps(result), key), False)
        part, final = out / f".durable-{i}.part", out / f"durable-{i}.mp4"
        async with client.stream("GET", result["video"]["url"]) as body:
            with open(part, "wb") as fh:
                async for chunk in body.aiter_bytes(65536):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(part, final)
        folder = os.open(out, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    return job


def floor_log(root: Path) -> sqlite3.Connection:
    db = sqlite3.connect(root / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE jobs (key TEXT PRIMARY KEY, state TEXT NOT NULL, job_id TEXT, result TEXT)")
    return db


DOWNLOAD_CPU: dict[str, float] = {}  # variant tag -> CPU seconds spent in downloads so far


def kling_job(client: AsyncEditClient, out: Path, tag: str) -> Job:
    async def job(i: int) -> None:
        result = await client.edit(client.request(VIDEO, f"{tag} job {i}"))
        cpu = time.process_time()
        await download(result.video.url, out / f"{tag}-{i}.mp4", result.video.file_size,
                       ctx=client.provider("fal").ctx)
        DOWNLOAD_CPU[tag] = DOWNLOAD_CPU.get(tag, 0.0) + time.process_time() - cpu

    return job


async def measure(job: Job, start: int, count: int) -> float:
    """CPU seconds per job over ``count`` jobs run one after another."""
    cpu = time.process_time()
    for i in range(start, start + count):
        await job(i)
    return (time.process_time() - cpu) / count


def kling_client(base: str, root: Path, journal: bool) -> AsyncEditClient:
    config = config_from_document({
        "providers": {"fal": {"base_url": base,
                              "poll": {"initial": 0.0, "max": 0.0, "jitter": 0.0, "stream": False}}},
        "media": {"allow_private_urls": True},
    })
    return AsyncEditClient(provider="fal", config=config, environ={"FAL_KEY": KEY},
                           journal=JobLog(root / "state") if journal else None, use_journal=journal)


async def run(base: str, root: Path, jobs: int, rounds: int) -> dict[str, list[float]]:
    out = root / "out"
    out.mkdir()
    raw = httpx.AsyncClient()
    db = floor_log(root)
    logged, bare = kling_client(base, root, True), kling_client(base, root, False)
    variants: dict[str, Job] = {
        "raw httpx": raw_job(raw, base, out),
        "raw + durable": durable_job(raw, base, out, db),
        "kling": kling_job(logged, out, "k"),
        "kling, no job log": kling_job(bare, out, "n"),
    }
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for job in variants.values():  # warm-up: imports, first connections, the ffmpeg check
        await measure(job, 10**6, 5)
    DOWNLOAD_CPU.clear()
    for r in range(rounds):
        for name, job in variants.items():
            cpu[name].append(await measure(job, r * jobs, jobs))
            for f in out.iterdir():
                f.unlink()
    await raw.aclose()
    db.close()
    await logged.aclose()
    await bare.aclose()
    return cpu


def joblog_costs(root: Path, ops: int) -> dict[str, tuple[float, float]]:
    """(CPU ms, wall ms) per operation for claim, plain and durable transitions."""
    log = JobLog(root / "ops")
    out: dict[str, tuple[float, float]] = {}
    keys: list[str] = []
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(ops):
        record, _ = log.claim(provider="fal", model="kling-o1", request={"i": i}, request_sha256=f"{i:064x}",
                              client_key=None, base_key=f"b{i}", new=False, output=None)
        keys.append(record.client_key)
    out["claim (durable)"] = ((time.process_time() - cpu) / ops * 1e3, (time.perf_counter() - wall) / ops * 1e3)
    for label, state, durable in (("transition", "running", False), ("transition (durable)", "submitted", True)):
        cpu, wall = time.process_time(), time.perf_counter()
        for key in keys:
            log.transition(key, state, durable=durable, error=None)
        out[label] = ((time.process_time() - cpu) / ops * 1e3, (time.perf_counter() - wall) / ops * 1e3)
    log.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=65536, help="bytes of each result video")
    parser.add_argument("--log-ops", type=int, default=2000)
    parser.add_argument("--check", action="store_true", help=f"exit 1 when kling is above {TARGET}x")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, Server("--polls", "2", "--size", str(args.size)) as host:
        root = Path(tmp)
        os.environ["KLING_STATE_DIR"] = str(root / "state")
        os.environ["XDG_CACHE_HOME"] = str(root / "cache")
        cpu = asyncio.run(run(host.base, root, args.jobs, args.rounds))
        costs = joblog_costs(root, args.log_ops)
    print(f"machine: {os.cpu_count()} cores, load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {sys.version.split()[0]}, "
          f"httpx {httpx.__version__}")
    print(f"jobs: {args.jobs} per variant per round, {args.rounds} rounds, {args.size}-byte videos; "
          f"host: {host.summary}")
    base = statistics.median(cpu["raw httpx"])
    floor = statistics.median(cpu["raw + durable"])
    for name, values in cpu.items():
        med = statistics.median(values)
        print(f"{name:18}: {med * 1e3:6.2f} ms CPU per job (median of {len(values)} rounds; "
              f"{min(values) * 1e3:.2f}–{max(values) * 1e3:.2f}), {med / base:.2f}x raw httpx, "
              f"{med / floor:.2f}x raw + durable")
    total_jobs = args.jobs * args.rounds
    print(f"of which the download (kling.http.download: checked, pinned, staged, fsynced): "
          f"{DOWNLOAD_CPU.get('k', 0) / total_jobs * 1e3:.2f} ms per job (kling), "
          f"{DOWNLOAD_CPU.get('n', 0) / total_jobs * 1e3:.2f} ms (no job log)")
    print(f"sniffio installed: {importlib.util.find_spec('sniffio') is not None} (without it httpcore "
          "retries a failed import for every lock it makes)")
    for label, (c, w) in costs.items():
        print(f"job log {label:21}: {c:.3f} ms CPU, {w:.3f} ms wall per operation ({args.log_ops} operations)")
    ratio = statistics.median(cpu["kling"]) / base
    print(f"target: kling <= {TARGET}x raw httpx: {'met' if ratio <= TARGET else 'NOT met'} ({ratio:.2f}x)")
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
