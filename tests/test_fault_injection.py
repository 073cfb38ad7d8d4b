"""Fault injection: `kling edit` on fal against a loopback host that fails on purpose, as a user runs it.

Each script of submit, status, result and download faults is run as a user would: `kling edit
<video URL> -p … --provider fal -o OUT` as a subprocess, then the exact same command again (no
`--client-key`: re-running resumes) until the run succeeds, or stops making progress, within a
bound. Across every run:

- 0 duplicate submits: the host created at most one job per submit body;
- 0 saved outputs that ffmpeg cannot decode (nor any that differ from what the host served);
- 0 job ids lost: every job whose id reached the client is in `kling jobs --json`; a job whose
  submit answer was lost is listed as uncertain;
- no `.part` file beside OUT after any run;
- every run ends with exit 0 or 1 and one message (no traceback, no hang, no key printed); a
  run that fails names the job (id or client key), and after a failed download the command that
  fetches it again;
- an uncertain submit (fal cannot look a job up by key) is an acceptable end only when the
  re-run refuses with exit 1 naming the commands that settle it, and `kling jobs` lists it.

The scripts: a fixed set covering every fault kind (what CI runs: about 15 s on 2 cores), or
`KLING_FAULT_RUNS=N` (the `deep` hypothesis profile: 300) random scripts, seeded by
`KLING_FAULT_SEED` (printed on failure). Figures are printed (`pytest -s`) and written to
`$KLING_FAULT_REPORT` when set.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
from fault_host import (
    FAKE_KEY,
    FAULTS,
    Fault,
    FaultHost,
    Run,
    Script,
    Videos,
    Workspace,
    decode_problems,
    edit_argv,
    entry_job_id,
    entry_key,
    entry_state,
    fal_config,
    make_videos,
    part_files,
    processes_mentioning,
)
from media_fixtures import _once

WORKERS = 4  # scripts run at once: the CLI mostly waits on the host, so 2 cores carry 4


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    made: Videos = _once(tmp_path_factory, "fault-videos", make_videos)
    return made


# -- the scripts --------------------------------------------------------------------------------

def F(spec: str, arg: float = 0.0) -> Fault:
    phase, _, kind = spec.partition(".")
    return Fault(phase, kind, arg)


# One script per fault kind at least, and the combinations that matter most.
FIXED: tuple[tuple[str, Script], ...] = (
    ("clean", Script()),
    ("submit-answer-lost", Script((F("submit.answer_lost"),))),
    ("submit-500", Script((F("submit.error_500"),))),
    ("submit-503", Script((F("submit.error_503"),))),
    ("submit-read-timeout", Script((F("submit.timeout"),))),
    ("status-503-429", Script((F("status.error_503", 0), F("status.rate_limited", 1)))),
    ("status-dropped-timeout", Script((F("status.dropped"), F("status.timeout")))),
    # More failed status GETs in a row than one run retries: the run fails, the re-run resumes.
    ("status-past-retry-bound", Script(tuple(F(s) for s in (
        "status.dropped", "status.error_503", "status.dropped", "status.rate_limited", "status.dropped",
        "status.error_503", "status.dropped")), queue_polls=2)),
    ("result-500-dropped", Script((F("result.error_500"), F("result.dropped")))),
    ("download-truncated", Script((F("download.truncated"),))),
    ("download-close-truncated-no-size", Script((F("download.close_truncated"),), report_size=False,
                                                content_length=False)),
    ("download-close-truncated-sized", Script((F("download.close_truncated"),))),
    ("download-not-video-same-size", Script((F("download.not_video"),))),
    ("download-not-video-no-size", Script((F("download.not_video"),), report_size=False, content_length=False)),
    ("download-503-then-truncated-no-size", Script((F("download.error_503"), F("download.truncated")),
                                                   report_size=False)),
    ("everything-but-submit", Script((F("status.dropped"), F("status.error_503", 0), F("result.dropped"),
                                      F("download.close_truncated")), report_size=False, content_length=False,
                                     queue_polls=2, progress_polls=2)),
)


def random_script(rng: random.Random, *, max_download_faults: int = 6) -> Script:
    faults: list[Fault] = []
    if rng.random() < 0.2:
        faults.append(Fault("submit", rng.choice(FAULTS["submit"])))
    for _ in range(rng.choice((0, 0, 1, 2, 3, 7))):
        kind = rng.choice(FAULTS["status"])
        faults.append(Fault("status", kind, float(rng.choice((0, 1))) if kind in ("error_503", "rate_limited") else 0))
    for _ in range(rng.choice((0, 0, 1, 2))):
        faults.append(Fault("result", rng.choice(FAULTS["result"])))
    for _ in range(rng.randint(0, max_download_faults)):
        faults.append(Fault("download", rng.choice(FAULTS["download"])))
    return Script(tuple(faults), report_size=rng.random() < 0.6, content_length=rng.random() < 0.7,
                  queue_polls=rng.randint(0, 2), progress_polls=rng.randint(0, 2))


def _profile() -> str:
    return os.environ.get("KLING_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "local")


def planned_scripts() -> tuple[list[tuple[str, Script]], int | None]:
    """The scripts to run and the seed they came from (None: the fixed set)."""
    runs = os.environ.get("KLING_FAULT_RUNS")
    count = int(runs) if runs else (300 if _profile() == "deep" else 0)
    if count <= 0:
        return list(FIXED), None
    seed = int(os.environ.get("KLING_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    return [(f"random-{i}", random_script(rng)) for i in range(count)], seed


# -- one script, as a user runs it ----------------------------------------------------------------

@attrs.define
class Outcome:
    name: str
    script: Script
    runs: list[Run] = attrs.field(factory=list)
    last_phases: list[str | None] = attrs.field(factory=list)  # each run's last request to the host
    violations: list[tuple[str, str]] = attrs.field(factory=list)  # (category, detail)
    end: str = "none"  # saved | uncertain | stuck
    created: int = 0
    seconds: float = 0.0
    log: str = ""

    def bad(self, category: str, detail: str) -> None:
        self.violations.append((category, detail))

    def report(self) -> str:
        runs = "\n    ".join(str(r) for r in self.runs)
        bad = "\n    ".join(f"[{c}] {d}" for c, d in self.violations)
        return (f"{self.name}: {self.script.describe()}\n  end={self.end} jobs created={self.created}\n"
                f"  runs:\n    {runs}\n  violations:\n    {bad}\n  host log (tail):\n{self.log}")


def run_script(name: str, script: Script, root: Path, videos: Videos) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(name, script)
    with FaultHost(videos.output, input_video=videos.input, script=script, max_requests=400,
                   lifetime=300) as host:
        ws = Workspace.create(root, fal_config(host))
        out = ws.cwd / "out.mp4"
        argv = edit_argv(host, out)
        max_runs = len(script.faults) + 3
        last: Run | None = None
        for _ in range(max_runs):
            before = host.api_requests()
            run = ws.run(argv)
            outcome.runs.append(run)
            outcome.last_phases.append(host.log[-1].phase if host.log else None)
            last = run
            _check_run(outcome, run, out, videos)
            if run.returncode == 0 and out.exists():
                outcome.end = "saved"
                break
            if host.api_requests() == before:  # refused without asking the host: no run will progress
                outcome.end = "stuck"
                break
        _check_end(outcome, ws, host, last)
        outcome.created = sum(host.created.values())
        if host.capped or host.expired:
            outcome.bad("host bounds", f"the host refused {host.capped} requests past its cap"
                        + (" and stopped at its time limit" if host.expired else ""))
        outcome.log = host.summary()
    for pid, argv_text in processes_mentioning(f"{root}/"):
        outcome.bad("process left", f"pid {pid}: {argv_text[:200]}")
    outcome.seconds = time.monotonic() - started
    return outcome


def _check_run(outcome: Outcome, run: Run, out: Path, videos: Videos) -> None:
    if run.timed_out:
        outcome.bad("hang", f"killed after {run.seconds:.0f}s: {run}")
    elif run.returncode not in (0, 1):
        outcome.bad("exit code", f"exit {run.returncode} (host trouble is 1): {run}")
    if "Traceback" in run.stderr or "unexpected" in run.stderr:
        outcome.bad("crash", str(run))
    if FAKE_KEY in run.stdout or FAKE_KEY in run.stderr:
        outcome.bad("key printed", str(run))
    if run.returncode == 0 and not out.exists():
        outcome.bad("exit 0 without output", str(run))
    leftovers = part_files(out)
    if leftovers:
        outcome.bad(".part left", f"{[p.name for p in leftovers]} after: {run}")
    if out.exists():
        problem = decode_problems(videos.ffmpeg, out)
        if problem is not None:
            outcome.bad("undecodable output saved", f"{out.stat().st_size} bytes, ffmpeg: {problem}; after: {run}")
        elif out.read_bytes() != videos.output:
            outcome.bad("wrong output saved", f"{out.stat().st_size} bytes, not the host's video; after: {run}")


def _check_end(outcome: Outcome, ws: Workspace, host: FaultHost, last: Run | None) -> None:
    dups = host.duplicates()
    if dups:
        outcome.bad("duplicate submit", f"jobs per submit body: {sorted(dups.values())}")
    entries, listing = ws.jobs()
    if entries is None:
        outcome.bad("kling jobs --json unavailable", str(listing))
    else:
        listed = {entry_job_id(e) for e in entries}
        uncertain = [e for e in entries if entry_state(e) == "uncertain"]
        with host._cond:
            jobs = list(host.jobs.values())
        for job in jobs:
            if job.delivered and job.request_id not in listed:
                outcome.bad("job id lost", f"{job.request_id} (its id reached the client) is not in kling jobs")
        undelivered = [j for j in jobs if not j.delivered]
        if len(uncertain) < len(undelivered):
            outcome.bad("job id lost", f"{len(undelivered)} job(s) whose submit answer was lost, "
                        f"{len(uncertain)} uncertain entr(y/ies) in kling jobs: {entries}")
        # A run that fails names the job (its id, or its client key); one that failed downloading
        # also names the command that fetches it again.
        names = {j.request_id for j in jobs} | {k for e in entries if (k := entry_key(e))}
        for run, last_phase in zip(outcome.runs, outcome.last_phases, strict=True):
            if run.returncode != 1:
                continue
            if not any(n in run.stderr for n in names):
                outcome.bad("failure names no job", str(run))
            if last_phase == "download" and "kling " not in run.stderr:
                outcome.bad("download failure names no command", str(run))
    submit_faulted = any(f.phase == "submit" for f in outcome.script.faults)
    if outcome.end == "saved":
        return
    if outcome.end == "stuck" and submit_faulted and last is not None:
        # The one acceptable end without the video: fal cannot look a job up by client key.
        keys = [entry_key(e) for e in entries or () if entry_state(e) == "uncertain"]
        if last.returncode != 1:
            outcome.bad("uncertain: refusal", f"the re-run should refuse with exit 1: {last}")
        if "kling jobs" not in last.stderr:
            outcome.bad("uncertain: no settling commands", f"the refusal names no `kling jobs …` command: {last}")
        if entries is not None and not keys:
            outcome.bad("uncertain: not listed", f"kling jobs lists no uncertain job: {entries}")
        elif keys and not any(k and k in last.stderr for k in keys):
            outcome.bad("uncertain: key not named", f"the refusal does not name the client key {keys}: {last}")
        return
    outcome.bad("not converged", f"ended {outcome.end!r} after {len(outcome.runs)} run(s), "
                f"faults left: {[str(f) for f in host.faults_left()]}")


# -- the tests --------------------------------------------------------------------------------------

def _run_all(scripts: list[tuple[str, Script]], tmp_path: Path, videos: Videos) -> list[Outcome]:
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(run_script, name, script, tmp_path / f"{i:03d}-{name}", videos)
                   for i, (name, script) in enumerate(scripts)]
        return [f.result() for f in futures]


def _figures(outcomes: list[Outcome], seed: int | None, seconds: float) -> dict[str, Any]:
    faults = Counter(str(Fault(f.phase, f.kind)) for o in outcomes for f in o.script.faults)
    return {
        "scripts": len(outcomes),
        "seed": seed,
        "profile": _profile(),
        "wall_seconds": round(seconds, 1),
        "cli_runs": sum(len(o.runs) for o in outcomes),
        "faults_injected": sum(faults.values()),
        "faults_by_kind": dict(sorted(faults.items())),
        "ends": dict(Counter(o.end for o in outcomes)),
        "jobs_created": sum(o.created for o in outcomes),
        "violations": dict(Counter(c for o in outcomes for c, _ in o.violations)),
        "scripts_with_violations": sum(1 for o in outcomes if o.violations),
    }


@pytest.mark.ffmpeg
def test_fault_scripts_never_pay_twice_lose_a_job_or_save_a_broken_video(tmp_path: Path, videos: Videos) -> None:
    scripts, seed = planned_scripts()
    started = time.monotonic()
    outcomes = _run_all(scripts, tmp_path, videos)
    figures = _figures(outcomes, seed, time.monotonic() - started)
    print("\nfault injection:", json.dumps(figures, indent=1))
    if os.environ.get("KLING_FAULT_REPORT"):
        Path(os.environ["KLING_FAULT_REPORT"]).write_text(json.dumps(
            {**figures, "failures": [o.report() for o in outcomes if o.violations]}, indent=1))
    failed = [o for o in outcomes if o.violations]
    detail = "\n\n".join(o.report() for o in failed[:6])
    assert not failed, (
        f"{len(failed)} of {len(outcomes)} scripts broke an invariant (seed {seed}); "
        f"violations by kind: {figures['violations']}\n\n{detail}"
    )


_LOCAL_RESULTS = ("file:///proc/self/environ", "/etc/passwd", "../../etc/passwd", "file:///etc/passwd")


@pytest.mark.ffmpeg
@pytest.mark.parametrize("url", _LOCAL_RESULTS)
def test_a_result_url_that_is_a_local_path_is_refused_naming_the_job(url: str, tmp_path: Path,
                                                                     videos: Videos) -> None:
    with FaultHost(videos.output, input_video=videos.input, script=Script(result_url=url), max_requests=50,
                   lifetime=60) as host:
        ws = Workspace.create(tmp_path, fal_config(host))
        out = ws.cwd / "out.mp4"
        run = ws.run(edit_argv(host, out))
        [job_id] = list(host.jobs)
        assert sum(host.created.values()) == 1
    assert run.returncode == 1, run
    assert job_id in run.stderr, f"the error should name the job {job_id}: {run}"
    assert "Traceback" not in run.stderr and "unexpected" not in run.stderr, run
    assert not out.exists(), f"{url} was copied into the output"
    assert part_files(out) == []
    assert "root:" not in run.stdout + run.stderr and FAKE_KEY not in run.stdout + run.stderr
    assert host.seen("download") == 0


def test_the_fixed_set_covers_every_fault_kind() -> None:
    covered = {(f.phase, f.kind) for _, script in FIXED for f in script.faults}
    missing = [f"{phase}.{kind}" for phase, kinds in FAULTS.items() for kind in kinds if (phase, kind) not in covered]
    assert not missing
    assert any(not s.report_size and not s.content_length for _, s in FIXED)  # nothing tells the size


def test_random_scripts_are_reproducible_from_their_seed() -> None:
    rng, again_rng = random.Random(7), random.Random(7)
    first = [random_script(rng) for _ in range(5)]
    again = [random_script(again_rng) for _ in range(5)]
    assert first == again
    assert all(f.kind in FAULTS[f.phase] for s in first for f in s.faults)
