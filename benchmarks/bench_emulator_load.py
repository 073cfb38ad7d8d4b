"""The emulator under load: N concurrent fal jobs from one client process, render = sample.

Run: python benchmarks/bench_emulator_load.py [--jobs 1000] [--hosts fal] [--poll 0.5]
                                              [--connections 200] [--timeout 300]

Starts ``kling emulate --render sample --port 0 --json`` as a separate process on 127.0.0.1
(queue and run times 0.2 s each, from a settings file), then, from this one process (asyncio,
one ``httpx.AsyncClient``), submits N jobs to fal's queue API at once, polls each job's status
every ``--poll`` seconds until COMPLETED, fetches each result document and downloads each
video (every byte, size checked against the result's ``file_size``).

Baseline, measured in the same run against the same server: the same number of requests,
with the same concurrency and client, to a trivial route of it (``GET /fal/.well-known/jwks.json``,
a fixed small JSON body). The job flow's requests per second are printed as a ratio of it.

Printed: jobs completed / failed, wall time, requests per second (job flow and baseline),
the most jobs in flight at once, the emulator's peak RSS (``VmHWM`` from /proc/<pid>/status
read at the end) and this client's, the CPU seconds each used, and how many emulator log lines show a 5xx or a traceback.
Bounded: at most ``--timeout`` seconds for the load, at most timeout/poll polls per job; the
emulator is stopped at the end (SIGINT, then SIGKILL after 15 s), also on Ctrl-C or errors.
Only fal is driven (``--hosts`` takes ``fal``): it is the host the 1,000-job figure is about.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import mib, status_kib
from emulator_process import EmulatorProcess

MODEL = "fal-ai/kling-video/o1/video-to-video/edit"
KEY = "bench-key:bench-secret"
TRIVIAL = "/.well-known/jwks.json"
GATE: asyncio.Semaphore  # set in load()


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Counter:
    def __init__(self) -> None:
        self.requests = 0  # counted before each request is sent
        self.in_flight = 0
        self.max_in_flight = 0


async def run_job(client: httpx.AsyncClient, base: str, n: int, poll: float, max_polls: int, c: Counter,
                  durations: list[float]) -> str | None:
    """One job through submit, status polls, result and download; None if it completed, else why not."""
    headers = {"Authorization": f"Key {KEY}"}
    body = {"prompt": f"Regrade the scene, take {n}", "video_url": "http://127.0.0.1:9/in.mp4"}
    started = time.perf_counter()
    c.requests += 1
    async with GATE:
        r = await client.post(f"{base}/{MODEL}", json=body, headers=headers)
    if r.status_code != 200:
        return f"submit {r.status_code}"
    c.in_flight += 1
    c.max_in_flight = max(c.max_in_flight, c.in_flight)
    try:
        doc = r.json()
        status_url, response_url = doc["status_url"], doc["response_url"]
        for _ in range(max_polls):
            await asyncio.sleep(poll)
            c.requests += 1
            async with GATE:
                r = await client.get(status_url, headers=headers)
            if r.status_code not in (200, 202):
                return f"status {r.status_code}"
            if r.json()["status"] == "COMPLETED":
                break
        else:
            return "not completed in time"
    finally:
        c.in_flight -= 1
    c.requests += 1
    async with GATE:
        r = await client.get(response_url, headers=headers)
    if r.status_code != 200:
        return f"result {r.status_code}"
    video = r.json()["video"]
    size = 0
    c.requests += 1
    async with GATE, client.stream("GET", video["url"]) as resp:
        if resp.status_code != 200:
            return f"download {resp.status_code}"
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
    if size != video["file_size"]:
        return f"download size {size} != {video['file_size']}"
    durations.append(time.perf_counter() - started)
    return None


async def guarded(coro: Any) -> str | None:
    try:
        return await coro
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}"


async def load(base: str, jobs: int, poll: float, timeout: float, limits: httpx.Limits) -> dict[str, Any]:
    global GATE
    # At most max_connections requests in flight: httpx's pool then never keeps a long queue of
    # waiting requests (scanning it costs the client more CPU than the emulator spends serving).
    GATE = asyncio.Semaphore(limits.max_connections or 100)
    c, durations = Counter(), []
    max_polls = max(1, int(timeout / poll))
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0, pool=timeout)) as client:
        # Warm-up, not counted: one job (the emulator makes its sample clip once) and a few trivial GETs.
        warm = await guarded(run_job(client, base, -1, poll, max_polls, Counter(), []))
        if warm is not None:
            raise RuntimeError(f"warm-up job failed: {warm}")
        for _ in range(20):
            (await client.get(base + TRIVIAL)).raise_for_status()
        started = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(guarded(run_job(client, base, n, poll, max_polls, c, durations)) for n in range(jobs))),
            timeout)
        wall = time.perf_counter() - started
        # Baseline: as many requests to a trivial route, spread over the same number of tasks.
        total = c.requests
        per_task = [total // jobs + (1 if i < total % jobs else 0) for i in range(jobs)]
        base_failures = 0

        async def trivial(count: int) -> None:
            nonlocal base_failures
            for _ in range(count):
                try:
                    async with GATE:
                        r = await client.get(base + TRIVIAL)
                    if r.status_code != 200:
                        base_failures += 1
                except httpx.HTTPError:
                    base_failures += 1

        b_started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(trivial(k) for k in per_task)), timeout)
        b_wall = time.perf_counter() - b_started
    failures = collections.Counter(r for r in results if r is not None)
    return {"wall": wall, "requests": total, "results": results, "failures": failures, "durations": durations,
            "max_in_flight": c.max_in_flight, "b_wall": b_wall, "b_failures": base_failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--hosts", default="fal", help="hosts to drive (only fal is supported)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between status polls of a job")
    parser.add_argument("--connections", type=int, default=200, help="httpx max_connections")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the load (and the baseline) may take")
    args = parser.parse_args()
    if args.hosts.strip().lower() != "fal":
        parser.error("only --hosts fal is driven by this benchmark")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    with tempfile.TemporaryDirectory(prefix="kling-bench-emu-") as tmp:
        emu = EmulatorProcess(Path(tmp), "fal")
        try:
            base = emu.urls()["fal"]
            r = asyncio.run(load(base, args.jobs, args.poll, args.timeout, limits))
            emu_peak = emu.peak_rss_kib()
            emu_cpu = cpu_seconds(emu.proc.pid)
        finally:
            emu.stop()
        five, tracebacks = emu.log_problems()
    client_peak = status_kib("VmHWM")
    client_cpu = cpu_seconds("self")
    completed = sum(1 for x in r["results"] if x is None)
    rps, b_rps = r["requests"] / r["wall"], r["requests"] / r["b_wall"]
    d = sorted(r["durations"]) or [0.0]
    print("emulator     : kling emulate --render sample (queue 0.2 s, run 0.2 s), fal, 127.0.0.1, own process")
    print(f"client       : one process, asyncio + one httpx.AsyncClient (max_connections={args.connections}), "
          f"poll every {args.poll} s")
    print(f"jobs         : {args.jobs} submitted at once, {completed} completed, {args.jobs - completed} failed"
          + (f" ({dict(r['failures'])})" if r["failures"] else ""))
    print(f"in flight    : at most {r['max_in_flight']} jobs submitted and not yet completed at once")
    print(f"job time     : median {statistics.median(d):.2f} s, p95 {d[int(0.95 * (len(d) - 1))]:.2f} s, "
          f"max {d[-1]:.2f} s (submit to downloaded)")
    print(f"job flow     : {r['requests']} requests in {r['wall']:.2f} s wall = {rps:.0f} req/s "
          f"(submit + status polls + result + download per job)")
    print(f"baseline     : {r['requests']} GET {TRIVIAL} in {r['b_wall']:.2f} s wall = {b_rps:.0f} req/s "
          f"({r['b_failures']} failed)")
    print(f"ratio        : job flow {rps / b_rps:.2f}x the baseline's requests per second")
    print(f"peak RSS     : emulator {mib(emu_peak)} (VmHWM), client {mib(client_peak)} (VmHWM)")
    print(f"cpu          : emulator {emu_cpu:.1f} s, client {client_cpu:.1f} s (whole run, warm-up and baseline included)")
    print(f"emulator log : {five} lines with a 5xx status, {tracebacks} tracebacks")
    return 0 if completed == args.jobs and not tracebacks and not five else 1


if __name__ == "__main__":
    sys.exit(main())
