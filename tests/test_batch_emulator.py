"""`kling batch` against `kling emulate` (ready-made renders): a 200-line manifest runs to the right
outputs; a batch killed half-way (SIGKILL) and run again submits nothing twice; a manifest with bad
lines is refused whole and nothing reaches the host. Submits are counted in the emulator's log."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ffmpeg
# Kling's host can look a job up by our client key (external_task_id): a submit whose answer the
# kill cut off is found again by the re-run, so every line ends saved, each submitted once.
FAST = pytest.mark.kling_emulator(hosts=["kling"], render="sample", queue_seconds=0.05, run_seconds=0.05)
SUBMIT = '"POST /kling/v1/videos/omni-video" 200'
LINES = 200


def _env(cwd: Path, emu: Any) -> dict[str, str]:
    return {**os.environ, **emu.environ(), "KLING_CONFIG_DIR": str(cwd / "user-config"),
            "KLING_STATE_DIR": str(cwd / "state"), "KLING_CACHE_DIR": str(cwd / "cache")}


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "kling_core", "batch", *args]


def _setup(tmp: Path, emu: Any, lines: int) -> Path:
    extra = ['[providers.kling.poll]', 'initial = 0.05', 'max = 0.2']
    (tmp / "kling.toml").write_text('default_provider = "kling"\n' + emu.kling_config(*extra))
    # The emulator's sample render does not fetch inputs: a loopback URL stands for the clip.
    video = f"{emu.origin}/inputs/clip.mp4"
    manifest = tmp / "edits.jsonl"
    manifest.write_text("".join(json.dumps({"video": video, "prompt": f"edit number {i}", "quality": "std",
                                            "output": f"out/{i:03d}.mp4"}) + "\n" for i in range(lines)))
    return manifest


def _submits(emu: Any) -> int:
    return sum(1 for line in emu.lines if SUBMIT in line)


def _results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_outputs(tmp: Path, results: list[dict[str, Any]], emu: Any) -> None:
    """Every line saved to its own output, a playable copy of the emulator's ready-made render,
    each from its own job (a distinct job id per line)."""
    from kling_core.media.probe import probe_video

    assert len(results) == LINES and all(r["state"] == "saved" for r in results), [
        r for r in results if r["state"] != "saved"][:3]
    by_line = {r["line"]: r for r in results}
    assert sorted(by_line) == list(range(1, LINES + 1))
    for number, r in by_line.items():
        assert r["output"] == str(tmp / "out" / f"{number - 1:03d}.mp4")
    assert len({r["job_id"] for r in results}) == LINES
    sizes = {(tmp / "out" / f"{i:03d}.mp4").stat().st_size for i in range(LINES)}
    assert len(sizes) == 1  # the one ready-made clip, whole, every time
    assert probe_video(tmp / "out" / "000.mp4", decode=False).duration > 3


@FAST
def test_a_200_line_batch_runs_to_the_right_outputs(kling_emulator: Any, tmp_path: Path) -> None:
    manifest = _setup(tmp_path, kling_emulator, LINES)
    done = subprocess.run(_argv(str(manifest), "--concurrency", "16", "--results", "results.jsonl"), cwd=tmp_path,
                          env=_env(tmp_path, kling_emulator), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_outputs(tmp_path, _results(tmp_path / "results.jsonl"), kling_emulator)
    assert _submits(kling_emulator) == LINES
    assert f"saved                     {LINES}" in done.stderr and "submitted" in done.stderr

    again = subprocess.run(_argv(str(manifest), "--json"), cwd=tmp_path, env=_env(tmp_path, kling_emulator),
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = [json.loads(line) for line in again.stdout.splitlines()]
    assert len(rerun) == LINES and {r["action"] for r in rerun} == {"skipped"}
    assert _submits(kling_emulator) == LINES  # nothing submitted by the re-run


def _logged_jobs(state: Path) -> int:
    db = state / "jobs.db"
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs WHERE job_id IS NOT NULL").fetchone()[0])
    except sqlite3.OperationalError:  # the table is being made
        return 0


@FAST
def test_killed_half_way_then_run_again_submits_nothing_twice(kling_emulator: Any, tmp_path: Path) -> None:
    manifest = _setup(tmp_path, kling_emulator, LINES)
    env = _env(tmp_path, kling_emulator)
    proc = subprocess.Popen(_argv(str(manifest), "--concurrency", "16", "--quiet"), cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _logged_jobs(tmp_path / "state") < LINES // 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the batch ended before it was killed"
            time.sleep(0.02)
        assert _logged_jobs(tmp_path / "state") >= LINES // 2
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    before = _submits(kling_emulator)
    assert LINES // 2 <= before < LINES  # killed half-way

    rerun = subprocess.run(_argv(str(manifest), "--concurrency", "16", "--results", "results.jsonl"), cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    results = _results(tmp_path / "results.jsonl")
    _check_outputs(tmp_path, results, kling_emulator)
    assert _submits(kling_emulator) == LINES  # each line submitted exactly once over both runs
    actions = {r["action"] for r in results}
    assert "submitted" in actions and ({"picked_up", "skipped"} & actions)


@FAST
def test_a_manifest_with_bad_lines_is_refused_whole(kling_emulator: Any, tmp_path: Path) -> None:
    manifest = _setup(tmp_path, kling_emulator, 20)
    lines = manifest.read_text().splitlines()
    lines[3] = json.dumps({"video": f"{kling_emulator.origin}/x.mp4", "prompt": "x", "quality": "ultra"})
    lines[7] = '{"video": "x.mp4"'
    lines[12] = json.dumps({"video": "missing.mp4", "prompt": "x @Image1", "output": "o.mov"})
    manifest.write_text("\n".join(lines) + "\n")
    done = subprocess.run(_argv(str(manifest), "--json"), cwd=tmp_path, env=_env(tmp_path, kling_emulator),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for expected in ("line 4, quality", "line 8: not JSON", "line 13, video", "line 13, prompt", "line 13, output"):
        assert expected in done.stderr, (expected, done.stderr)
    assert _submits(kling_emulator) == 0 and not (tmp_path / "out").exists()
    assert _logged_jobs(tmp_path / "state") == 0


@pytest.mark.kling_emulator(hosts=["kling"], render="sample", queue_seconds=1.0, run_seconds=0.05)
def test_a_rerun_giving_lines_another_webhook_picks_their_jobs_up(kling_emulator: Any, tmp_path: Path) -> None:
    """The webhook is not part of a line's identity: a re-run whose lines carry another callback URL
    (a receiver on another port) picks their jobs up instead of refusing their keys."""
    import asyncio

    from kling_core.batches import BatchEvents, abatch
    from kling_core.client import AsyncEditClient
    from kling_core.config import config_from_document
    from kling_core.joblog import JobLog

    doc = {"media": {"allow_private_urls": True},
           "providers": {"kling": {"base_url": kling_emulator.urls["kling"], "poll": {"initial": 0.05, "max": 0.2}}}}
    video = f"{kling_emulator.origin}/inputs/clip.mp4"

    def manifest(hook: str) -> Path:
        path = tmp_path / "edits.jsonl"
        path.write_text("".join(json.dumps({"video": video, "prompt": f"p{i}", "quality": "std", "provider": "kling",
                                            "webhook_url": f"{kling_emulator.origin}/{hook}"}) + "\n" for i in range(3)))
        return path

    class AllBound(BatchEvents):
        def __init__(self) -> None:
            self.count, self.done = 0, asyncio.Event()

        def bound(self, line: Any, started: Any) -> None:
            self.count += 1
            if self.count == 3:
                self.done.set()

    def client() -> AsyncEditClient:
        return AsyncEditClient(config=config_from_document(doc), environ=kling_emulator.environ(),
                               journal=JobLog(tmp_path / "state"))

    async def interrupted() -> None:
        events = AllBound()
        async with client() as c:
            async def consume() -> None:
                async for _r in abatch(manifest("hook-a"), client=c, concurrency=3, events=events):
                    pass

            task = asyncio.create_task(consume())
            await asyncio.wait_for(events.done.wait(), 60)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    async def rerun() -> list[Any]:
        async with client() as c:
            return [r async for r in abatch(manifest("hook-b"), client=c, concurrency=3)]

    asyncio.run(interrupted())
    assert _submits(kling_emulator) == 3
    results = asyncio.run(rerun())
    assert [(r.state, r.action) for r in results] == [("saved", "picked_up")] * 3, [r.error for r in results]
    assert _submits(kling_emulator) == 3
