"""The one way kling-core runs ffmpeg on untrusted media.

- argv list, no shell, ``-nostdin``; every input is an absolute ``file:`` path opened with
  ``-protocol_whitelist file`` and its own ``-format_whitelist`` (plus ``-f`` where known);
- bounded threads, a wall-clock timeout, and the child's whole process group killed and
  reaped on timeout or cancellation;
- output written to a temporary name next to the destination and renamed only when ffmpeg
  exited cleanly, so a reader never sees a half-written file; the temporary file is removed
  on every other exit path;
- progress read from ``-progress pipe:1`` (ffmpeg's documented key=value stream).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import secrets
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from kling_core.errors import MediaError
from kling_core.media.formats import whitelist

DEFAULT_THREADS = 2
_STDERR_TAIL = 4000

ProgressCallback = Callable[[float], None]  # seconds of output written so far


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
    argv += ["-filter_threads", "1", "-filter_complex_threads", "1"]
    for item in inputs:
        argv += item.argv(threads)
    argv += [*output_args, "-f", output_format, f"file:{output.resolve()}"]
    return argv


def temp_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")


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
) -> Path:
    """Run one ffmpeg job writing ``output`` atomically; raise MediaError on any failure."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(output)
    argv = build_argv(ffmpeg, inputs, output_args, tmp, output_format=output_format, threads=threads)
    done = False
    try:
        await _run(argv, timeout=timeout, on_progress=on_progress)
        os.replace(tmp, output)
        done = True
        return output
    finally:
        if not done:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


async def _run(argv: list[str], *, timeout: float, on_progress: ProgressCallback | None) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a kill reaches every child
        )
    except OSError as exc:
        raise MediaError(f"could not start ffmpeg ({argv[0]}): {exc}") from None
    tail: collections.deque[str] = collections.deque(maxlen=40)

    async def read_progress() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            if on_progress is not None and key == "out_time_us" and value.strip().lstrip("-").isdigit():
                on_progress(max(0, int(value)) / 1_000_000)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            tail.append(raw.decode("utf-8", "replace").rstrip())

    readers = asyncio.gather(read_progress(), read_stderr())
    try:
        await asyncio.wait_for(_wait_all(proc, readers), timeout)
    except TimeoutError:
        await _kill(proc, readers)
        raise MediaError(f"ffmpeg timed out after {timeout:g}s and was killed") from None
    except BaseException:  # cancellation: never leave an encoder running behind us
        await _kill(proc, readers)
        raise
    if proc.returncode != 0:
        detail = "\n".join(tail)[-_STDERR_TAIL:].strip()
        raise MediaError(f"ffmpeg failed (exit {proc.returncode})" + (f":\n{detail}" if detail else ""))


async def _wait_all(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    await readers
    await proc.wait()


async def _kill(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    # Reap the child (no zombie) and let the readers see EOF.
    await asyncio.shield(proc.wait())
    readers.cancel()
    with contextlib.suppress(BaseException):
        await readers
