"""`kill -9` of `kling edit` at every phase, then the same command again (issue 10, "crash-safe").

Phases: after the submit left (the host saw it, the answer never came back), while polling,
mid-download (the host stalls mid-body), all on fal against the loopback host; and mid-render on
the mock (killed while its ffmpeg runs). After each kill: nothing of the killed process group is
left running, no ffmpeg with our paths in its argv. After the re-run: zero second submits, the
result saved (and playable), no `.part` file left for that output.

fal cannot look a job up by client key, so after a kill that lost the submit's answer the job id
is unknowable: there the re-run must refuse (exit 1) naming the commands that settle it, and
`kling jobs` lists the job as uncertain — saving is impossible, resubmitting would pay twice.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from fault_host import (
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
    group_members,
    kill_group,
    make_videos,
    part_files,
    processes_mentioning,
    wait_until,
)
from media_fixtures import _once

pytestmark = pytest.mark.ffmpeg

ORPHAN_GRACE = 1.0  # seconds a killed parent's ffmpeg may take to die

MOCK_CONFIG = """\
default_provider = "mock"

[providers.mock.options]
latency = 0
"""


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    made: Videos = _once(tmp_path_factory, "fault-videos", make_videos)
    return made


@pytest.fixture(scope="session")
def render_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of 1280x720: the mock's 1080p render takes seconds, so an orphan would outlive the grace below."""
    from kling_core.media.samples import make_clip

    made: Path = _once(tmp_path_factory, "render-clip",
                       lambda d: make_clip(d / "clip.mp4", duration=8.0, size=(1280, 720), fps=24, audio=True))
    return made


@attrs.define
class Checks:
    """Every outcome checked, all failures reported at once (which of them fail says what is missing)."""

    failed: list[str] = attrs.field(factory=list)

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)

    def done(self, context: str) -> None:
        assert not self.failed, "\n- ".join([f"{len(self.failed)} outcome(s) failed", *self.failed]) + f"\n{context}"


def _kill(proc: subprocess.Popen[str], checks: Checks) -> None:
    """SIGKILL the CLI's process group; check nothing of it is left running."""
    if proc.poll() is not None:
        _, err = proc.communicate()
        pytest.fail(f"the CLI ended (exit {proc.returncode}) before it could be killed: {err[-500:]}")
    kill_group(proc)
    proc.wait(10)
    proc.communicate()
    checks.expect(wait_until(lambda: not group_members(proc.pid), 5),
                  f"processes of the killed group still run: {group_members(proc.pid)}")


def _no_orphans(ws: Workspace, out: Path, checks: Checks, when: str) -> None:
    for needle in (f"{ws.root}/", str(out)):
        gone = wait_until(lambda n=needle: not processes_mentioning(n), 5)  # type: ignore[misc]
        checks.expect(gone, f"{when}: processes still running with {needle} in their argv: "
                      f"{processes_mentioning(needle)}")


def _saved(run: Run, out: Path, expected: bytes | None, ffmpeg: str, checks: Checks) -> None:
    checks.expect(run.returncode == 0, f"the re-run should save the result (exit 0): {run}")
    checks.expect(out.exists(), f"no output at {out} after the re-run")
    if out.exists():
        problem = decode_problems(ffmpeg, out)
        checks.expect(problem is None, f"the saved output does not decode: {problem}")
        if expected is not None:
            checks.expect(out.read_bytes() == expected, "the saved output is not the host's video")
    checks.expect("Traceback" not in run.stderr and "unexpected" not in run.stderr, f"crashed: {run}")


def _no_parts(out: Path, checks: Checks) -> None:
    left = part_files(out)
    checks.expect(not left, f".part files left beside the output: {[p.name for p in left]}")


def _listed(ws: Workspace, checks: Checks, job_ids: list[str]) -> list[dict[str, object]]:
    entries, run = ws.jobs()
    checks.expect(entries is not None, f"`kling jobs --json` gave no job list: {run}")
    listed = {entry_job_id(e) for e in entries or ()}
    for job_id in job_ids:
        checks.expect(entries is None or job_id in listed, f"job {job_id} is not in `kling jobs --json`: {entries}")
    return entries or []


def _fal(tmp_path: Path, videos: Videos, script: Script) -> tuple[FaultHost, Workspace, Path, list[str]]:
    host = FaultHost(videos.output, input_video=videos.input, script=script, max_requests=200, lifetime=120).start()
    # Downloads may stall for as long as the test needs to kill the CLI mid-body.
    ws = Workspace.create(tmp_path, fal_config(host, download_timeout=30.0))
    out = ws.cwd / "out.mp4"
    return host, ws, out, edit_argv(host, out)


def test_kill_after_the_submit_left(tmp_path: Path, videos: Videos) -> None:
    host, ws, out, argv = _fal(tmp_path, videos, Script((Fault("submit", "hold"),)))
    checks = Checks()
    try:
        proc = ws.popen(argv)
        assert host.wait_for(lambda: sum(host.created.values()) == 1, 30), "the submit never reached the host"
        _kill(proc, checks)  # the host holds its answer: the client never learns the job id
        host.release()
        _no_orphans(ws, out, checks, "after the kill")
        rerun = ws.run(argv)
        checks.expect(sum(host.posted.values()) == 1,
                      f"the re-run submitted again: {sum(host.posted.values())} submits for one command")
        checks.expect(rerun.returncode == 1, f"the re-run should refuse (exit 1), the job id being unknowable: {rerun}")
        checks.expect("kling jobs" in rerun.stderr, f"the refusal names no `kling jobs …` command that settles it: {rerun}")
        entries = _listed(ws, checks, [])
        uncertain = [e for e in entries if entry_state(e) == "uncertain"]
        checks.expect(bool(uncertain) or not entries, f"`kling jobs` does not list the job as uncertain: {entries}")
        keys = [k for e in uncertain if (k := entry_key(e))]
        checks.expect(not keys or any(k in rerun.stderr for k in keys),
                      f"the refusal does not name the client key {keys}: {rerun}")
        checks.expect(not out.exists(), "an output appeared without a job id")
        _no_parts(out, checks)
        _no_orphans(ws, out, checks, "after the re-run")
    finally:
        host.stop()
    checks.done(host.summary())


def _rerun_saves_once(host: FaultHost, ws: Workspace, argv: list[str], out: Path, videos: Videos,
                      checks: Checks) -> None:
    """The same command again: no second submit, the result saved, nothing left behind."""
    rerun = ws.run(argv)
    checks.expect(sum(host.posted.values()) == 1,
                  f"the re-run submitted again: {sum(host.posted.values())} submits for one command")
    _saved(rerun, out, videos.output, videos.ffmpeg, checks)
    _no_parts(out, checks)
    _listed(ws, checks, list(host.jobs))
    _no_orphans(ws, out, checks, "after the re-run")


def test_kill_while_polling(tmp_path: Path, videos: Videos) -> None:
    host, ws, out, argv = _fal(tmp_path, videos, Script())
    host.hold_running = True
    checks = Checks()
    try:
        proc = ws.popen(argv)
        assert host.wait_for(lambda: host.seen("status") >= 2, 30), "the CLI never polled"
        _kill(proc, checks)
        _no_orphans(ws, out, checks, "after the kill")
        host.release_running()
        _rerun_saves_once(host, ws, argv, out, videos, checks)
    finally:
        host.stop()
    checks.done(host.summary())


def test_kill_mid_download(tmp_path: Path, videos: Videos) -> None:
    host, ws, out, argv = _fal(tmp_path, videos, Script((Fault("download", "stall"),)))
    checks = Checks()
    try:
        proc = ws.popen(argv)
        assert host.wait_for(lambda: host.seen("download") >= 1, 30), "the CLI never downloaded"
        # Half the body is on its way and the host stalls: kill once the client has a file for it
        # (beside the output, where the guarded fetch writes), or soon after the host sent it.
        wait_until(lambda: bool(part_files(out)), 2)
        _kill(proc, checks)
        host.release()
        _no_orphans(ws, out, checks, "after the kill")
        _rerun_saves_once(host, ws, argv, out, videos, checks)
    finally:
        host.stop()
    checks.done(host.summary())


def test_kill_mid_render_on_the_mock(tmp_path: Path, render_clip: Path) -> None:
    from kling_core.media.locate import find_ffmpeg

    ws = Workspace.create(tmp_path, MOCK_CONFIG)
    clip = shutil.copy(render_clip, ws.cwd / "clip.mp4")
    out = ws.cwd / "out.mp4"
    argv = ["edit", str(clip), "-p", "make it look like winter", "--provider", "mock", "-o", str(out), "-q"]
    jobs_dir = ws.cache_dir / "mock" / "jobs"
    checks = Checks()

    def renders() -> list[tuple[int, str]]:
        return processes_mentioning(str(ws.cache_dir), name="ffmpeg")

    proc = ws.popen(argv)
    try:
        assert wait_until(lambda: bool(renders()) or proc.poll() is not None, 60), "the mock never started ffmpeg"
        running = renders()
        assert running and proc.poll() is None, f"the render ended before it could be killed: {proc.poll()}"
    except BaseException:
        kill_group(proc)
        raise
    _kill(proc, checks)
    # Dying with its parent takes milliseconds; an orphan would keep rendering for seconds.
    checks.expect(wait_until(lambda: not renders(), ORPHAN_GRACE),
                  f"ffmpeg outlived the killed CLI (orphaned): {renders() or running}")
    _no_orphans(ws, out, checks, "after the kill")
    rerun = ws.run(argv)
    submitted = sorted(p.name for p in jobs_dir.iterdir()) if jobs_dir.is_dir() else []
    checks.expect(len(submitted) == 1, f"the re-run submitted again: mock jobs {submitted}")
    _saved(rerun, out, None, find_ffmpeg(), checks)
    _no_parts(out, checks)
    for job in submitted:
        leftovers = [p.name for p in (jobs_dir / job).iterdir() if p.name.endswith(".part")]
        checks.expect(not leftovers, f"mock job {job} keeps the dead render's temporary files: {leftovers}")
    _listed(ws, checks, submitted)
    checks.expect(not renders(), f"ffmpeg still running after the re-run: {renders()}")
    _no_orphans(ws, out, checks, "after the re-run")
    checks.done(f"jobs: {submitted}")


_RUN_FFMPEG = """
import asyncio, sys
from pathlib import Path
from kling_core.media.formats import VIDEO_FORMATS
from kling_core.media.locate import find_ffmpeg
from kling_core.media.runner import FfmpegInput, run_ffmpeg
slow = FfmpegInput(Path(sys.argv[1]), VIDEO_FORMATS, options=("-re",))  # real time: seconds
asyncio.run(run_ffmpeg(find_ffmpeg(), [slow], ["-c", "copy"], Path(sys.argv[2]), timeout=60))
"""


def test_ffmpeg_dies_with_its_killed_parent(tmp_path: Path, render_clip: Path) -> None:
    """run_ffmpeg's child has its own process group (so a timeout kills all of it), yet a SIGKILL of
    the Python process that started it must not leave it running."""
    out = tmp_path / "copy.mp4"
    proc = subprocess.Popen([sys.executable, "-c", _RUN_FFMPEG, str(render_clip), str(out)], start_new_session=True)
    try:
        assert wait_until(lambda: bool(processes_mentioning(str(tmp_path), name="ffmpeg")), 30), "ffmpeg never ran"
    finally:
        kill_group(proc)  # the Python parent only: ffmpeg is in a session of its own
        proc.wait(10)
    assert wait_until(lambda: not processes_mentioning(str(tmp_path), name="ffmpeg"), ORPHAN_GRACE), \
        f"ffmpeg outlived its parent: {processes_mentioning(str(tmp_path))}"
    assert not out.exists()
