"""Shared media fixtures for the media and mock tests: generated clips, images, a loopback server.

Imported by the test modules (``from media_fixtures import ...``); pytest sees the fixtures
through that import.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from kling_core.media import SampleMedia, make_sample
from kling_core.media.samples import make_clip

SAMPLE_DURATION = 3.2
SAMPLE_SIZE = (1280, 720)
SAMPLE_FPS = 24


# Each test module imports these fixtures, which gives each module its own fixture
# definition; the cache makes the media itself once per session (per xdist worker).
_MADE: dict[tuple[str, str], Any] = {}


def _once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Any]) -> Any:
    key = (str(factory.getbasetemp()), name)
    if key not in _MADE:
        _MADE[key] = make(factory.mktemp(name))
    return _MADE[key]


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleMedia:
    """A 3.2 s 1280x720 24 fps clip with a tone, and three reference images (red, blue, green)."""
    made: SampleMedia = _once(
        tmp_path_factory,
        "sample",
        lambda d: make_sample(d, duration=SAMPLE_DURATION, size=SAMPLE_SIZE, fps=SAMPLE_FPS, images=3),
    )
    return made


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s: under the 3 s minimum."""
    made: Path = _once(
        tmp_path_factory,
        "short",
        lambda d: make_clip(d / "short.mp4", duration=2.0, size=(1280, 720), fps=24, audio=False),
    )
    return made


def _make_long_4k(d: Path) -> Path:
    from kling_core.media.locate import find_ffmpeg
    from kling_core.media.samples import generate

    one = make_clip(d / "one.mp4", duration=1.0, size=(3840, 2160), fps=24, audio=False)
    return generate(find_ffmpeg(), ["-stream_loop", "59", "-i", f"file:{one}", "-c", "copy"], d / "long4k.mp4", fmt="mp4")


@pytest.fixture(scope="session")
def long_4k_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of 3840x2160 at 24 fps, made cheaply: one encoded second, looped by stream copy."""
    made: Path = _once(tmp_path_factory, "long4k", _make_long_4k)
    return made


@attrs.define
class LoopbackServer:
    """A loopback HTTP server serving files from a folder and recording every path asked for."""

    root: Path
    hits: list[str] = attrs.field(factory=list)
    redirects: dict[str, str] = attrs.field(factory=dict)  # path -> Location
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[LoopbackServer]:
    root = tmp_path / "served"
    root.mkdir()
    state = LoopbackServer(root)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            target = root / self.path.lstrip("/").split("?", 1)[0]
            if not target.is_file():
                self.send_error(404)
                return
            body = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_playlist(path: Path, segment_url: str) -> Path:
    """An HLS playlist pointing at ``segment_url``, saved under a video file name."""
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:4.0,\n{segment_url}\n#EXT-X-ENDLIST\n"
    )
    return path


def write_concat(path: Path, target: Path) -> Path:
    """An ffconcat list including another local file, saved under a video file name."""
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return path


@attrs.frozen
class Frame:
    """One decoded picture as packed RGB, for sampling pixels without numpy."""

    width: int
    height: int
    rgb: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = (y * self.width + x) * 3
        return self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]

    def mean(self, x: int, y: int, w: int, h: int) -> tuple[float, float, float]:
        sums = [0, 0, 0]
        for yy in range(y, y + h):
            row = self.rgb[(yy * self.width + x) * 3 : (yy * self.width + x + w) * 3]
            for c in range(3):
                sums[c] += sum(row[c::3])
        n = w * h
        return sums[0] / n, sums[1] / n, sums[2] / n

    def difference(self, other: Frame, x: int, y: int, w: int, h: int) -> float:
        """Mean absolute per-channel difference over a region (a hue turn keeps the mean grey)."""
        total = 0
        for yy in range(y, y + h):
            start, end = (yy * self.width + x) * 3, (yy * self.width + x + w) * 3
            total += sum(abs(a - b) for a, b in zip(self.rgb[start:end], other.rgb[start:end], strict=True))
        return total / (w * h * 3)


def frame_at(path: Path, seconds: float) -> Frame:
    """The first frame at or after ``seconds``, decoded with PyAV."""
    import av

    with av.open(str(path), options={"protocol_whitelist": "file"}) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time + 1e-6 >= seconds:
                rgb = frame.reformat(format="rgb24")
                plane = rgb.planes[0]
                width, height = rgb.width, rgb.height
                raw = bytes(plane)
                stride = plane.line_size
                packed = b"".join(raw[r * stride : r * stride + width * 3] for r in range(height))
                return Frame(width, height, packed)
    raise AssertionError(f"no frame at {seconds}s in {path}")


def close_to(a: tuple[float, ...], b: tuple[float, ...], tol: float) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))
