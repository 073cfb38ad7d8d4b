"""The one way kling-core runs ffmpeg on untrusted media.

- argv list, no shell, ``-nostdin``; every input is an absolute ``file:`` path opened with
  ``-protocol_whitelist file`` and its own ``-format_whitelist`` (plus ``-f`` where known);
- bounded threads, a wall-clock timeout, and the child's whole process group killed and
  reaped on timeout or cancellation;
- on Linux the child also dies with us: it asks the kernel (``PR_SET_PDEATHSIG``) for a
  SIGKILL when the thread that started it ends, so a ``kill -9`` of kling leaves no encoder
  running in its own session;
- output written to a temporary name next to the destination and renamed only when ffmpeg
  exited cleanly, so a reader never sees a half-written file; the temporary file is removed
  on every other exit path;
- progress read from ``-progress pipe:1`` (ffmpeg's documented key=value stream).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from kling_core.errors import MediaError
from kling_core.files import atomic_path
from kling_core.media.formats import whitelist

DEFAULT_THREADS = 2
_STDERR_TAIL = 4000

ProgressCallback = Callable[[float], None]  # seconds of output written so far

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@functools.cache
def _prctl() -> Callable[..., int] | None:
    # Looked up in the parent, once: the function a child runs between fork and exec must not
    # load anything (another thread may hold the loader's or the allocator's lock at fork time).
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).prctl  # libc's, linked into the interpreter
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    func.restype = ctypes.c_int
    prctl: Callable[..., int] = func
    return prctl


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGKILL when its parent (thread) ends (Linux)."""
    prctl = _prctl()
    if prctl is None:
        return None

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


@attrs.frozen
class FfmpegInput:
    """One local input file and how ffmpeg may open it."""

    path: Path = attrs.field(converter=Path)
    formats: tuple[str, ...]  # demuxer whitelist
    format: str | None = None  # explicit -f (the demuxer the probe found)
    options: tuple[str, ...] = ()  # extra input options, e.g. ("-pattern_type", "none")

    def argv(self, threads: int) -> list[str]:
        path = self.path.resolve()
        out = ["-protocol_whitelist", "file", "-format_whitelist", whitelist(self.formats)]
        out += ["-threads", str(threads), *self.options]
        if self.format:
            out += ["-f", self.format]
        # "file:" stops a name like "http:x" or "concat:a|b" being read as a protocol.
        return [*out, "-i", f"file:{path}"]


def build_argv(
    ffmpeg: str,
    inputs: Sequence[FfmpegInput],
    output_args: Sequence[str],
    output: Path,
    *,
    output_format: str = "mp4",
    threads: int = DEFAULT_THREADS,
    progress: bool = True,
) -> list[str]:
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
    if progress:
        argv += ["-progress", "pipe:1", "-stats_period", "0.2"]
    argv += ["-filter_threads", str(threads), "-filter_complex_threads", str(threads)]
    for item in inputs:
        argv += item.argv(threads)
    argv += [*output_args, "-f", output_format, f"file:{output.resolve()}"]
    return argv


async def run_ffmpeg(
    ffmpeg: str,
    inputs: Sequence[FfmpegInput],
    output_args: Sequence[str],
    output: Path,
    *,
    timeout: float,
    output_format: str = "mp4",
    threads: int = DEFAULT_THREADS,
    on_progress: ProgressCallback | None = None,
    durable: bool = True,
) -> Path:
    """Run one ffmpeg job writing ``output`` atomically; raise MediaError on any failure.

    ``durable=False`` skips the fsyncs (see :mod:`kling_core.files`): for a file that is copied
    on, like the mock's render, or can be made again.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output, durable=durable) as tmp:
        argv = build_argv(ffmpeg, inputs, output_args, tmp, output_format=output_format, threads=threads)
        await _run(argv, timeout=timeout, on_progress=on_progress)
    return output


async def _run(argv: list[str], *, timeout: float, on_progress: ProgressCallback | None) -> None:
    # Spawned synchronously (Popen) rather than with asyncio.create_subprocess_exec: a task
    # cancelled while asyncio is still creating the child can hang forever on 3.11, e.g. when
    # asyncio.run() shuts down right after a job was started. Exit is observed by polling.
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a kill reaches every child
            preexec_fn=_die_with_parent(os.getpid()),  # ... and it dies with us, even on SIGKILL
        )
    except OSError as exc:
        raise MediaError(f"could not start ffmpeg ({argv[0]}): {exc}") from None
    tail: collections.deque[str] = collections.deque(maxlen=40)

    def progress_line(raw: bytes) -> None:
        key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
        if on_progress is not None and key == "out_time_us" and value.strip().lstrip("-").isdigit():
            on_progress(max(0, int(value)) / 1_000_000)

    def stderr_line(raw: bytes) -> None:
        tail.append(raw.decode("utf-8", "replace").rstrip())

    assert proc.stdout is not None and proc.stderr is not None
    watched = asyncio.gather(_lines(proc.stdout, progress_line), _lines(proc.stderr, stderr_line), _exited(proc))
    try:
        await asyncio.wait_for(watched, timeout)
    except TimeoutError:
        _kill(proc, watched)
        raise MediaError(f"ffmpeg timed out after {timeout:g}s and was killed") from None
    except BaseException:  # cancellation or a callback's error: never leave an encoder running
        _kill(proc, watched)
        raise
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    if proc.returncode != 0:
        detail = "\n".join(tail)[-_STDERR_TAIL:].strip()
        raise MediaError(f"ffmpeg failed (exit {proc.returncode})" + (f":\n{detail}" if detail else ""))


async def _lines(pipe: IO[bytes], handle: Callable[[bytes], None]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        async for raw in reader:
            handle(raw)
    finally:
        transport.close()


async def _exited(proc: subprocess.Popen[bytes]) -> None:
    # Linux: a pidfd turns readable the moment the child ends, so its end is seen at once
    # (polling notices it up to a poll interval late, after every render).
    if await _pidfd_wait(proc.pid):
        proc.wait()  # it has ended: this only reaps it
        return
    delay = 0.005
    while proc.poll() is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _pidfd_wait(pid: int) -> bool:
    """Wait until process ``pid`` (our unreaped child) ends; False where pidfds are unavailable."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        return False
    try:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ended.done():
                ended.set_result(None)

        try:
            loop.add_reader(fd, readable)
        except NotImplementedError:  # an event loop without add_reader
            return False
        try:
            await ended
        finally:
            loop.remove_reader(fd)
        return True
    finally:
        os.close(fd)


def _kill(proc: subprocess.Popen[bytes], watched: asyncio.Future[Any]) -> None:
    """SIGKILL the child's process group and reap it (no zombie left behind)."""
    watched.cancel()
    # Mark the outcome as seen so asyncio does not log "exception was never retrieved".
    watched.add_done_callback(lambda f: f.cancelled() or f.exception())
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
