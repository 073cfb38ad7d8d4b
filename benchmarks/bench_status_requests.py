"""Status requests and completion lag per job: kling-core's wait against fal-client's 0.1 s poll.

Run: python benchmarks/bench_status_requests.py [--jobs 40] [--latency 0.005] [--json] [--check]

A 200 s job is too slow to run for real many times, so everything runs in **virtual time**: an
asyncio event loop whose clock jumps to its next timer whenever nothing is ready (no real
waiting; every ``asyncio.sleep``, the client's injected ``sleep`` and ``clock``, and the host's
own timing use that clock). The host is in-process, behind an ``httpx.MockTransport``: it
answers fal's queue API (status, the server-sent-events status stream, result) and Segmind's
v2 API (status, result) by virtual time, each answer after ``--latency`` seconds. A stream
sends the status on connect, a keep-alive comment every 15 s, and COMPLETED at the job's end.

Measured per job, from submit: status requests (status GETs + stream connections), all
requests (with the result GET), and the lag: the time the wait returns the result minus the
time the job ended (so it includes the confirming status GET and the result GET).

Clients, all in the same run against the same host:

* **fal-client** — its documented schedule (``DEFAULT_QUEUE_POLL_INTERVAL`` = 0.1 s): status GET,
  sleep 0.1 s, until COMPLETED, then the result GET (reproduced here with httpx; fal-client
  itself opens its own connections and cannot be pointed at an in-process transport).
* **before** — kling-core's wait loop before this change, reproduced over the same provider:
  status GET, then the backoff (2 s ×1.5 to 20 s, ±25 % jitter).
* **kling-core** — ``AsyncEditClient.wait`` as shipped, with each provider's own data: fal with
  its status stream; fal with the stream lost at 100 s (the host then refuses new streams);
  Segmind by polling (its published 223–255 s range); and a polling host whose typical range
  is configured as ``typical_seconds = [180, 240]`` (fal's wire format, stream off), so that a
  200 s job falls inside it.

Targets (issue 14): at most 1/20 of fal-client's status requests per job; completion noticed
within 1 s with a push channel, within 2 s by polling for jobs ending inside the typical
range, within 5 % of the duration for outliers. ``--check`` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import selectors
import statistics
import sys
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.http.retry import backoff_delays
from kling_core.settings import PollSettings

FAL_ROOT = "https://queue.fal.run/fal-ai/kling-video/requests/"
SEGMIND_ROOT = "https://api.segmind.com/v2/requests/"
VIDEO_URL = "https://v3b.fal.media/files/out.mp4"
KEEP_ALIVE = 15.0
FAL_CLIENT_INTERVAL = 0.1  # fal_client.client.DEFAULT_QUEUE_POLL_INTERVAL


# -- virtual time ------------------------------------------------------------------------------
class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer when nothing is ready to run."""

    def __init__(self) -> None:
        super().__init__(selectors.DefaultSelector())
        self.now = 0.0
        real = self._selector.select  # type: ignore[attr-defined]
        idle = [0]

        def select(timeout: float | None = None) -> list[Any]:
            ready = real(0)
            if ready:
                return ready  # type: ignore[no-any-return]
            if timeout is None:
                idle[0] += 1
                if idle[0] > 1000:
                    raise RuntimeError("virtual time: nothing is scheduled and nothing is ready (a deadlock)")
            elif timeout > 0:
                idle[0] = 0
                self.now += timeout
            return []

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.now


# -- the in-process host -----------------------------------------------------------------------
@attrs.define
class Job:
    ends: float
    stream_lost_at: float | None = None  # the stream breaks off here; later streams are refused


@attrs.define
class Counts:
    status: int = 0
    stream: int = 0
    result: int = 0


class VirtualHost:
    """fal's queue API and Segmind's v2 API, answering by the loop's virtual clock."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.jobs: dict[str, Job] = {}
        self.counts: dict[str, Counts] = {}

    def add(self, job_id: str, duration: float, *, stream_lost_at: float | None = None) -> None:
        now = asyncio.get_running_loop().time()
        self.jobs[job_id] = Job(now + duration, None if stream_lost_at is None else now + stream_lost_at)
        self.counts[job_id] = Counts()

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?", 1)[0]
        await asyncio.sleep(self.latency)
        if url.startswith(FAL_ROOT):
            return self._fal(url[len(FAL_ROOT):].split("/"))
        if url.startswith(SEGMIND_ROOT):
            return self._segmind(url[len(SEGMIND_ROOT):].split("/"))
        return httpx.Response(404, json={"detail": "Not Found"})

    def _fal(self, parts: list[str]) -> httpx.Response:
        job_id, tail = parts[0], parts[1:]
        job, counts = self.jobs[job_id], self.counts[job_id]
        if tail == ["status"]:
            counts.status += 1
            doc = self._fal_doc(job_id, job)
            return httpx.Response(200 if doc["status"] == "COMPLETED" else 202, json=doc)
        if tail == ["status", "stream"]:
            counts.stream += 1
            if job.stream_lost_at is not None and self.now() >= job.stream_lost_at:
                return httpx.Response(503, json={"detail": "stream unavailable"})
            return httpx.Response(200, content=self._events(job_id, job), headers={"content-type": "text/event-stream"})
        counts.result += 1
        return httpx.Response(200, json={"video": {"url": VIDEO_URL, "content_type": "video/mp4", "file_size": 1}})

    def _fal_doc(self, job_id: str, job: Job) -> dict[str, Any]:
        root = FAL_ROOT + job_id
        state = "COMPLETED" if self.now() >= job.ends else "IN_PROGRESS"
        doc: dict[str, Any] = {"status": state, "request_id": job_id, "status_url": f"{root}/status",
                               "response_url": root, "cancel_url": f"{root}/cancel", "logs": []}
        if state == "COMPLETED":
            doc.update(error=None, error_type=None, metrics={})
        return doc

    async def _events(self, job_id: str, job: Job) -> AsyncIterator[bytes]:
        yield f"data: {json.dumps(self._fal_doc(job_id, job))}\n\n".encode()
        while self.now() < job.ends:
            stop = min(job.ends, self.now() + KEEP_ALIVE)
            if job.stream_lost_at is not None:
                stop = min(stop, job.stream_lost_at)
            await asyncio.sleep(max(0.0, stop - self.now()))
            if job.stream_lost_at is not None and self.now() >= job.stream_lost_at:
                raise httpx.ReadError("the connection was reset")  # the stream breaks off
            if self.now() < job.ends:
                yield b": keep-alive\n\n"
        yield f"data: {json.dumps(self._fal_doc(job_id, job))}\n\n".encode()

    def _segmind(self, parts: list[str]) -> httpx.Response:
        job_id, tail = parts[0], parts[1:]
        job, counts = self.jobs[job_id], self.counts[job_id]
        done = self.now() >= job.ends
        if tail == ["status"]:
            counts.status += 1
            return httpx.Response(200, json={"status": "COMPLETED" if done else "PROCESSING", "request_id": job_id})
        counts.result += 1
        return httpx.Response(200, json={"status": "COMPLETED", "output": VIDEO_URL})


# -- the clients -------------------------------------------------------------------------------
@attrs.frozen
class Profile:
    name: str
    provider: str  # fal | segmind
    poll: dict[str, Any] = attrs.field(factory=dict)  # [providers.NAME.poll]
    stream_lost_at: float | None = None
    typical: tuple[float, float] | None = None  # for the verdict: where the 2 s target applies
    push: bool = False


PROFILES = (
    Profile("fal, status stream", "fal", push=True),
    Profile("fal, stream lost at 100 s", "fal", stream_lost_at=100.0, typical=(210.0, 255.0)),
    Profile("segmind, polling (223-255 s published)", "segmind", typical=(223.0, 255.0)),
    Profile("polling, typical_seconds = [180, 240]", "fal", {"stream": False, "typical_seconds": [180, 240]},
            typical=(180.0, 240.0)),
)
DURATIONS = (60.0, 120.0, 185.0, 200.0, 223.0, 240.0, 255.0, 300.0, 600.0)


@attrs.frozen
class Run:
    status: int  # status GETs + stream connections
    requests: int
    lag: float


async def fal_client_schedule(host: VirtualHost, job_id: str, duration: float) -> Run:
    """fal-client's subscribe(): status GET every 0.1 s until COMPLETED, then the result GET."""
    host.add(job_id, duration)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        while True:
            doc = (await http.get(f"{FAL_ROOT}{job_id}/status", params={"logs": "false"})).json()
            if doc["status"] == "COMPLETED":
                break
            await asyncio.sleep(FAL_CLIENT_INTERVAL)
        await http.get(f"{FAL_ROOT}{job_id}")
    return _run(host, job_id, loop.time())


def _client(provider: str, poll: dict[str, Any], host: VirtualHost, seed: int) -> AsyncEditClient:
    loop = asyncio.get_running_loop()
    cfg = config_from_document({"providers": {provider: {"poll": poll}}} if poll else {})
    return AsyncEditClient(provider=provider, config=cfg, transport=httpx.MockTransport(host), use_journal=False,
                           environ={"FAL_KEY": "fake-fal-key", "SEGMIND_API_KEY": "fake-segmind-key"},
                           clock=loop.time, sleep=asyncio.sleep, rng=random.Random(seed))


async def kling_core(profile: Profile, host: VirtualHost, job_id: str, duration: float, seed: int) -> Run:
    loop = asyncio.get_running_loop()
    host.add(job_id, duration, stream_lost_at=profile.stream_lost_at)
    async with _client(profile.provider, profile.poll, host, seed) as client:
        prov = client.provider(profile.provider)
        handle = attrs.evolve(prov.resume(job_id, model="kling-o1"), submitted_at=loop.time())
        await client.wait(handle)
    return _run(host, job_id, loop.time())


async def before(profile: Profile, host: VirtualHost, job_id: str, duration: float, seed: int) -> Run:
    """kling-core's wait loop before this change: a status poll, then the backoff (2 s ×1.5 to 20 s)."""
    loop = asyncio.get_running_loop()
    host.add(job_id, duration)
    async with _client(profile.provider, {"stream": False}, host, seed) as client:
        prov = client.provider(profile.provider)
        handle = prov.resume(job_id, model="kling-o1")
        delays = backoff_delays(PollSettings(initial=2.0), random.Random(seed))
        while (await prov.follow(handle)).state != "succeeded":
            await asyncio.sleep(next(delays))
    return _run(host, job_id, loop.time())


def _run(host: VirtualHost, job_id: str, noticed: float) -> Run:
    c = host.counts[job_id]
    return Run(status=c.status + c.stream, requests=c.status + c.stream + c.result,
               lag=noticed - host.jobs[job_id].ends)


# -- the measurement ---------------------------------------------------------------------------
def summary(runs: list[Run]) -> dict[str, float]:
    lags = sorted(r.lag for r in runs)
    return {"status": statistics.fmean(r.status for r in runs), "requests": statistics.fmean(r.requests for r in runs),
            "lag_mean": statistics.fmean(lags), "lag_p95": lags[min(len(lags) - 1, int(0.95 * len(lags)))],
            "lag_max": lags[-1]}


async def measure(jobs: int, latency: float) -> dict[str, Any]:
    host = VirtualHost(latency)
    serial = iter(range(10**9))
    out: dict[str, Any] = {"fal-client": {}, "profiles": {}}
    for duration in DURATIONS:
        out["fal-client"][duration] = summary([await fal_client_schedule(host, f"fc-{next(serial)}", duration)])
    for profile in PROFILES:
        rows: dict[str, Any] = {}
        for duration in DURATIONS:
            ours = [await kling_core(profile, host, f"kc-{next(serial)}", duration, seed) for seed in range(jobs)]
            old = [await before(profile, host, f"old-{next(serial)}", duration, seed) for seed in range(jobs)]
            rows[str(duration)] = {"ours": summary(ours), "before": summary(old)}
        if profile.typical is not None:  # ends spread over the whole typical range
            low, high = profile.typical
            rng = random.Random(7)
            ends = [rng.uniform(low, high) for _ in range(jobs * 5)]
            ours = [await kling_core(profile, host, f"kc-{next(serial)}", d, seed) for seed, d in enumerate(ends)]
            rows["in range"] = {"ours": summary(ours)}
        out["profiles"][profile.name] = rows
    return out


def verdicts(result: dict[str, Any]) -> list[str]:
    missed = []
    for profile in PROFILES:
        rows = result["profiles"][profile.name]
        for key, row in rows.items():
            ours = row["ours"]
            duration = float(key) if key != "in range" else None
            base = result["fal-client"][duration]["status"] if duration is not None else None
            if base is not None and ours["status"] > base / 20:
                missed.append(f"{profile.name}, {key} s: {ours['status']:.1f} status requests > 1/20 of {base:.0f}")
            if profile.push and ours["lag_max"] > 1.0:
                missed.append(f"{profile.name}, {key}: lag {ours['lag_max']:.2f} s > 1 s")
            if profile.typical is not None and not profile.push:
                low, high = profile.typical
                if duration is None or low <= duration <= high:
                    if ours["lag_max"] > 2.0:
                        missed.append(f"{profile.name}, {key}: lag {ours['lag_max']:.2f} s > 2 s")
                elif duration > high and ours["lag_max"] > 0.05 * duration:
                    missed.append(f"{profile.name}, {key} s: lag {ours['lag_max']:.1f} s > 5 % of the duration")
    return missed


def print_table(result: dict[str, Any], jobs: int, latency: float) -> None:
    print(f"virtual time; answer latency {latency * 1000:.0f} ms; {jobs} jobs per cell (jitter seeds 0..{jobs - 1}); "
          f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print("\nfal-client (0.1 s):  duration -> status requests, lag")
    for duration, row in result["fal-client"].items():
        print(f"  {duration:>6.0f} s  {row['status']:7.0f}  {row['lag_mean']:.2f} s")
    for profile in PROFILES:
        print(f"\n{profile.name}")
        print("  job ends  |   kling-core: status  all  lag mean/p95/max  | before: status  lag mean/max "
              "| status vs fal-client")
        for key, row in result["profiles"][profile.name].items():
            o = row["ours"]
            label = f"{float(key):>6.0f} s" if key != "in range" else "in range"
            line = (f"  {label:>8}  | {o['status']:18.1f} {o['requests']:4.1f}  "
                    f"{o['lag_mean']:5.2f}/{o['lag_p95']:5.2f}/{o['lag_max']:5.2f} s")
            if "before" in row:
                b = row["before"]
                base = result["fal-client"][float(key)]["status"]
                line += (f"  | {b['status']:14.1f}  {b['lag_mean']:5.2f}/{b['lag_max']:5.2f} s "
                         f"| 1/{base / o['status']:.0f}")
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per cell (jitter seeds), default 40")
    parser.add_argument("--latency", type=float, default=0.005, help="seconds each answer takes, default 0.005")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    loop = VirtualTimeLoop()
    try:
        result = loop.run_until_complete(measure(args.jobs, args.latency))
    finally:
        loop.close()
    missed = verdicts(result)
    if args.json:
        print(json.dumps({"jobs": args.jobs, "latency": args.latency, "result": result, "missed": missed}, indent=1))
    else:
        print_table(result, args.jobs, args.latency)
        print("\ntargets: " + ("all met" if not missed else "MISSED:\n  " + "\n  ".join(missed)))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
