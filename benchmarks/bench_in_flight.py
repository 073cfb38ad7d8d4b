"""Thousands of jobs in flight in one process: the kling client against a raw httpx loop.

Run: python benchmarks/bench_in_flight.py [--jobs 1000] [--job-seconds 30] [--size 65536]
                                          [--variants raw,kling] [--timeout 900]

The host (``benchmarks/loopback_fal.py``, its own process) finishes each job ``--job-seconds``
after its submit. Each variant runs in a process of its own (so its peak memory is its own),
starts all ``--jobs`` jobs at once and waits for every one:

- **kling**: ``AsyncEditClient.edit`` on provider ``fal`` (base URL = the host,
  ``max_in_flight = --jobs`` so every job is in flight at once, the job log in a temporary
  state dir, fal's own poll schedule and status stream), then
  :func:`kling_core.http.download` of the result (the guarded fetch);
- **raw** (baseline): one ``httpx.AsyncClient`` (64 connections) behind an
  ``asyncio.Semaphore(64)``, each job: submit, poll with fal's default backoff (2 s ×1.5 up to
  20 s, ±25 %) until COMPLETED, result GET, download streamed to a file. Without the semaphore
  httpx's pool itself queues every waiting request, which is what the kling client used to do.

Printed per variant: jobs completed / failed (by error type), the most jobs submitted and not
yet finished at once, wall time and CPU seconds (and per job) from the start of the jobs (after
the client is made and, for kling, the requests are built: a batch's input), peak RSS (``VmHWM``) and its
growth over the RSS before the first job, event-loop lag (a 100 ms ticker: the most and the
99th percentile of how late it woke), and the host's request counts. Exits 1 if a job failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import status_kib
from loopback_fal import Server

VIDEO = "https://media.example.com/input.mp4"
KEY = "bench-key:bench-secret"
CONNECTIONS = 64


class Lag:
    """How late a 100 ms ticker wakes: the event loop's responsiveness."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.1)
            self.samples.append(max(0.0, loop.time() - start - 0.1))


class Tally:
    """Jobs done, failed and in flight; ``go()`` starts the clocks and the lag ticker once a
    variant's setup is done (client made, requests built), just before its jobs start."""

    def __init__(self) -> None:
        self.lag = Lag()
        self.ticker: asyncio.Future[None] | None = None
        self.cpu0 = self.wall0 = 0.0
        self.in_flight = 0
        self.most = 0
        self.done = 0
        self.failed: collections.Counter[str] = collections.Counter()

    def go(self) -> None:
        self.ticker = asyncio.ensure_future(self.lag.run())
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def started(self) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)

    def ended(self) -> None:
        self.in_flight -= 1


async def kling_jobs(base: str, jobs: int, size: int, out: Path, tally: Tally) -> None:
    from kling_core.client import AsyncEditClient
    from kling_core.config import config_from_document
    from kling_core.http import download

    config = config_from_document({"providers": {"fal": {"base_url": base, "max_in_flight": jobs}},
                                   "media": {"allow_private_urls": True}})
    async with AsyncEditClient(provider="fal", config=config, environ={"FAL_KEY": KEY}) as client:
        ctx = client.provider("fal").ctx
        # The requests are the batch's input, built before the jobs start (as a batch reads its
        # file first): what is measured is running them.
        requests = [client.request(VIDEO, f"job {i}") for i in range(jobs)]
        tally.go()

        async def job(i: int) -> None:
            try:
                submitted = False

                def on_submit(handle: Any) -> None:
                    nonlocal submitted
                    submitted = True
                    tally.started()

                try:
                    result = await client.edit(requests[i], on_submit=on_submit)
                finally:
                    if submitted:
                        tally.ended()
                dest = out / f"{i}.mp4"
                await download(result.video.url, dest, result.video.file_size, ctx=ctx)
                dest.unlink()
                tally.done += 1
            except Exception as exc:
                tally.failed[type(exc).__name__] += 1

        await asyncio.gather(*(job(i) for i in range(jobs)))


async def raw_jobs(base: str, jobs: int, size: int, out: Path, tally: Tally) -> None:
    import httpx
    from kling_core_plugins.fal.endpoints import ENDPOINTS

    endpoint = ENDPOINTS[("kling-o1", "edit", "std")]
    headers = {"authorization": f"Key {KEY}"}
    gate = asyncio.Semaphore(CONNECTIONS)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def call(method: str, url: str, **kw: Any) -> Any:
            async with gate:
                r = await client.request(method, url, headers=headers, **kw)
                r.raise_for_status()
                return r.json()

        tally.go()

        async def job(i: int) -> None:
            try:
                doc = await call("POST", f"{base}/{endpoint}", json={"prompt": f"job {i}", "video_url": VIDEO})
                tally.started()
                delay = 2.0
                try:
                    while (await call("GET", doc["status_url"], params={"logs": "1"}))["status"] != "COMPLETED":
                        await asyncio.sleep(delay * random.uniform(0.75, 1.25))
                        delay = min(20.0, delay * 1.5)
                    result = await call("GET", doc["response_url"])
                finally:
                    tally.ended()
                dest = out / f"{i}.mp4"
                async with gate, client.stream("GET", result["video"]["url"]) as body:
                    with open(dest, "wb") as fh:
                        async for chunk in body.aiter_bytes(65536):
                            fh.write(chunk)
                dest.unlink()
                tally.done += 1
            except Exception as exc:
                tally.failed[type(exc).__name__] += 1

        await asyncio.gather(*(job(i) for i in range(jobs)))


async def child_main(variant: str, base: str, jobs: int, size: int, timeout: float) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="bench-in-flight-"))
    os.environ["KLING_STATE_DIR"] = str(out / "state")
    run = kling_jobs if variant == "kling" else raw_jobs
    if variant == "kling":  # imports before the baseline RSS, as the raw variant's
        import kling_core.client
        import kling_core.http  # noqa: F401
    else:
        import httpx  # noqa: F401
    rss0 = status_kib("VmRSS")
    tally = Tally()
    try:
        await asyncio.wait_for(run(base, jobs, size, out, tally), timeout)
    except TimeoutError:
        tally.failed["benchmark timeout"] += jobs - tally.done - sum(tally.failed.values())
    wall, cpu = time.perf_counter() - tally.wall0, time.process_time() - tally.cpu0
    if tally.ticker is not None:
        tally.ticker.cancel()
    samples = sorted(tally.lag.samples) or [0.0]
    return {
        "variant": variant, "jobs": jobs, "done": tally.done, "failed": dict(tally.failed), "most": tally.most,
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cpu_ms_per_job": round(cpu / jobs * 1e3, 2),
        "rss0_mib": round(rss0 / 1024, 1), "peak_mib": round(status_kib("VmHWM") / 1024, 1),
        "lag_max_s": round(samples[-1], 3), "lag_p99_s": round(samples[int(0.99 * (len(samples) - 1))], 3),
        "lag_median_s": round(statistics.median(samples), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--job-seconds", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument("--variants", default="raw,kling")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one variant may take")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "BASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(child_main(args.child[0], args.child[1], args.jobs, args.size, args.timeout))
        print(json.dumps(result), flush=True)
        return 0
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; "
          f"Python {sys.version.split()[0]}; {args.jobs} jobs of {args.job_seconds:g} s, {args.size}-byte videos")
    failed = False
    for variant in args.variants.split(","):
        with Server("--job-seconds", str(args.job_seconds), "--size", str(args.size)) as host:
            proc = subprocess.run(
                [sys.executable, __file__, "--jobs", str(args.jobs), "--size", str(args.size),
                 "--timeout", str(args.timeout), "--child", variant, host.base],
                capture_output=True, text=True, check=False,
            )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"{variant}: no result (exit {proc.returncode})\n{proc.stderr[-3000:]}")
            failed = True
            continue
        r = json.loads(lines[-1])
        failed = failed or r["done"] != r["jobs"]
        print(f"{variant:6}: {r['done']}/{r['jobs']} completed, failed {r['failed'] or 0}; most in flight "
              f"{r['most']}; wall {r['wall_s']} s; CPU {r['cpu_s']} s ({r['cpu_ms_per_job']} ms per job); "
              f"peak RSS {r['peak_mib']} MiB (+{r['peak_mib'] - r['rss0_mib']:.1f} over {r['rss0_mib']} MiB "
              f"at start); event-loop lag max {r['lag_max_s']} s, p99 {r['lag_p99_s']} s, median "
              f"{r['lag_median_s']} s; host {host.summary}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
