"""Results: the mock's deterministic render, a small fast one, or a ready-made sample.

``full`` is exactly the mock's render (``kling_core_plugins.mock.render``: the same plan, the
same ffmpeg arguments), so a request gives the same bytes as ``kling edit --provider mock``
with the same inputs. ``fast`` is the same plan scaled to a 180 px short side (the duration
is kept: clients check that a result lasts as long as its input). ``sample`` encodes nothing
per job: every job gets one clip made once per state folder (3.2 s, 1280x720, 24 fps, a tone),
whatever its input, for load tests.

A render is keyed by a digest of the mode, the request fields that shape the picture and the
SHA-256 of every input file, so identical requests share one file (and one encode).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import attrs
from kling_core_plugins.mock import render as mock_render

from kling_core.contract.models import EditRequest
from kling_core.emulator.storage import Storage
from kling_core.media.probe import ImageInfo, VideoInfo, probe_video
from kling_core.media.runner import run_ffmpeg
from kling_core.media.samples import make_clip

FAST_SHORT_SIDE = 180
OUTPUT_NAME = "output.mp4"
SAMPLE_KEY = "sample-clip-v1"


@attrs.frozen
class Rendered:
    key: str
    name: str
    path: Path
    size: int
    duration: float


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fast_plan(plan: mock_render.RenderPlan) -> mock_render.RenderPlan:
    scale = FAST_SHORT_SIDE / min(plan.width, plan.height)

    def even(x: float) -> int:
        return max(2, round(x * scale / 2) * 2)

    tiles = tuple(attrs.evolve(t, x=round(t.x * scale), y=round(t.y * scale), size=even(t.size)) for t in plan.tiles)
    return attrs.evolve(plan, width=even(plan.width), height=even(plan.height), tiles=tiles)


class Renderer:
    def __init__(self, mode: str, storage: Storage, *, ffmpeg: Callable[[], str], timeout: float,
                 max_parallel: int) -> None:
        self.mode = mode
        self.storage = storage
        self._ffmpeg = ffmpeg
        self.timeout = timeout
        self._slots = asyncio.Semaphore(max_parallel)
        self._inflight: dict[str, asyncio.Future[Rendered]] = {}
        self._done: dict[str, Rendered] = {}

    async def digest(self, request: EditRequest, files: Sequence[Path]) -> str:
        sums = await asyncio.to_thread(lambda: [file_digest(p) for p in files])
        h = hashlib.sha256()
        for part in (self.mode, request.prompt, request.model, request.edit_mode, request.quality,
                     str(request.keep_audio), *sums):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()

    async def render(self, request: EditRequest, video: VideoInfo, images: Sequence[ImageInfo],
                     frontals: Sequence[ImageInfo], *, files: Sequence[Path],
                     on_progress: Callable[[float], None] | None = None) -> Rendered:
        """``request`` names local files; ``files`` are every input in order (for the digest)."""
        key = "r" + (await self.digest(request, files))[:40]
        plan = mock_render.plan(request, video, list(images), list(frontals))
        if self.mode == "fast":
            plan = fast_plan(plan)

        async def encode(dest: Path) -> None:
            total = max(plan.duration, 1e-6)

            def progress(seconds: float) -> None:
                if on_progress is not None:
                    on_progress(min(99.0, 100.0 * seconds / total))

            await run_ffmpeg(self._ffmpeg(), mock_render.inputs(plan, video), mock_render.output_args(plan), dest,
                             timeout=self.timeout, on_progress=progress)

        return await self._once(key, encode)

    async def sample(self) -> Rendered:
        async def encode(dest: Path) -> None:
            ff = self._ffmpeg()
            await asyncio.to_thread(make_clip, dest, duration=3.2, size=(1280, 720), fps=24, ffmpeg=ff)

        return await self._once(SAMPLE_KEY, encode)

    async def _once(self, key: str, encode: Callable[[Path], Awaitable[None]]) -> Rendered:
        dest = self.storage.path(key, OUTPUT_NAME)
        assert dest is not None
        while True:
            done = self._done.get(key)
            if done is not None and done.path.is_file():
                return done
            if dest.is_file():
                self._done[key] = await self._describe(key, dest)
                return self._done[key]
            pending = self._inflight.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if pending.cancelled():  # the job that was encoding it was cancelled, not this one
                    continue
                raise
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            async with self._slots:
                await encode(dest)
            rendered = self._done[key] = await self._describe(key, dest)
            future.set_result(rendered)
            return rendered
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._inflight.pop(key, None)

    @staticmethod
    async def _describe(key: str, path: Path) -> Rendered:
        info = await asyncio.to_thread(probe_video, path, "output", decode=False)
        return Rendered(key=key, name=OUTPUT_NAME, path=path, size=info.size_bytes, duration=info.duration)
