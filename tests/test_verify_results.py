"""Verified results: a result URL from a host must be http(s); the download is probed before it
takes the output's name; an unplayable body is fetched again within a bound, then the error
names the job and the command that fetches it again. Nothing half-written stays behind.
"""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import httpx
import pytest
from media_fixtures import sample
from mock_helpers import provider, request, run_job

from kling_core.contract.models import EditResult, OutputVideo
from kling_core.contract.status import Succeeded
from kling_core.errors import MediaError, ProtocolError, ProviderError, ResultExpiredError
from kling_core.http.download import UNPLAYABLE, VERIFY_ATTEMPTS, download_result, own_dirs, refetch_command
from kling_core.media import SampleMedia
from kling_core.media.locate import find_ffmpeg
from kling_core.media.netguard import IPAddress
from kling_core.media.samples import generate, make_clip
from kling_core.provider import ProviderContext
from kling_core.settings import MediaSettings
from kling_core.verify import UnplayableVideoError, duration_tolerance, verify_video

__all__ = ["sample"]  # a fixture, imported for pytest

JOB = "fal job j1"
DNS = {"cdn.example": "93.184.216.34"}
URL = "https://cdn.example/files/out.mp4"


def fake_resolve(host: str, port: int) -> list[IPAddress]:
    return [ipaddress.ip_address(DNS[host])]


@attrs.frozen
class Clips:
    mp4: Path  # moov at the end (ffmpeg's default)
    faststart: Path  # moov first: a cut-off copy still probes
    mkv: Path
    short: Path  # 1.5 s
    audio_only: Path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    d = tmp_path_factory.mktemp("verify")
    ff = find_ffmpeg()
    mp4 = make_clip(d / "clip.mp4", duration=3.2, size=(160, 120), fps=24, audio=True)
    faststart = generate(ff, ["-i", f"file:{mp4}", "-c", "copy", "-movflags", "+faststart"], d / "fs.mp4", fmt="mp4")
    mkv = generate(ff, ["-i", f"file:{mp4}", "-c", "copy"], d / "clip.mkv", fmt="matroska")
    short = make_clip(d / "short.mp4", duration=1.5, size=(160, 120), fps=24, audio=False)
    audio = generate(ff, ["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac"], d / "tone.m4a", fmt="mp4")
    return Clips(mp4=mp4, faststart=faststart, mkv=mkv, short=short, audio_only=audio)


def cut(src: Path, dest: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part"))


# -- verify_video --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mp4", "faststart", "mkv"])
def test_a_whole_video_passes(clips: Clips, name: str) -> None:
    verify_video(getattr(clips, name), expect_duration=3.2, job=JOB)
    verify_video(getattr(clips, name), expect_duration=None, job=JOB)


@pytest.mark.parametrize("name", ["mp4", "faststart", "mkv"])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.97])
def test_a_cut_off_video_is_unplayable_naming_the_job(clips: Clips, tmp_path: Path, name: str, fraction: float) -> None:
    src: Path = getattr(clips, name)
    broken = cut(src, tmp_path / f"cut{src.suffix}", fraction)
    with pytest.raises(UnplayableVideoError) as info:
        verify_video(broken, expect_duration=None, job=JOB)
    assert isinstance(info.value, MediaError)
    assert str(info.value).startswith(f"{JOB}: the result is not a playable video: ")


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body>Access denied</body></html>", b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", b"\x00" * 4096],
    ids=["empty", "html", "playlist", "zeros"],
)
def test_what_is_not_a_video_is_unplayable(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "r.mp4"
    path.write_bytes(body)
    with pytest.raises(UnplayableVideoError, match=JOB):
        verify_video(path, expect_duration=None, job=JOB)


def test_audio_without_a_video_stream_is_refused(clips: Clips) -> None:
    with pytest.raises(UnplayableVideoError, match="no video stream"):
        verify_video(clips.audio_only, expect_duration=None, job=JOB)


def test_the_duration_must_follow_the_input_within_tolerance(clips: Clips) -> None:
    assert duration_tolerance(3.2) == 0.5 and duration_tolerance(20.0) == pytest.approx(1.0)
    verify_video(clips.mp4, expect_duration=3.6, job=JOB)  # 0.4 s off: within 0.5 s
    verify_video(clips.mp4, expect_duration=2.8, job=JOB)
    with pytest.raises(UnplayableVideoError, match=r"lasts 1\.50 s, the input 3\.20 s"):
        verify_video(clips.short, expect_duration=3.2, job=JOB)
    with pytest.raises(UnplayableVideoError, match=r"the input 4\.00 s"):
        verify_video(clips.mp4, expect_duration=4.0, job=JOB)


# -- download_result over an injected transport --------------------------------------------


class Host:
    """Answers each GET with the next body (the last one repeats); records every request."""

    def __init__(self, *bodies: bytes | int, headers: dict[str, str] | None = None) -> None:
        self.bodies = list(bodies)
        self.requests: list[httpx.Request] = []
        self.headers = headers or {}
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = self.bodies[min(len(self.requests), len(self.bodies)) - 1]
        if isinstance(body, int):
            return httpx.Response(body)
        return httpx.Response(200, content=body, headers=self.headers)


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def result_for(url: str, *, provider: str = "fal", size: int | None = None) -> EditResult:
    return EditResult(video=OutputVideo(url=url, file_size=size), job_id="j1", provider=provider, model="kling-o1")


def fal_ctx(host: Host | None = None, work: Path | None = None, **media: Any) -> tuple[ProviderContext, Sleeps]:
    sleeps = Sleeps()
    ctx = ProviderContext(name="fal", media=MediaSettings(**media), transport=host.transport if host else None,
                          sleep=sleeps, work_dir=work)
    return ctx, sleeps


def get(result: EditResult, dest: Path, ctx: ProviderContext, **kw: Any) -> Path:
    return asyncio.run(download_result(result, dest, ctx, resolve=fake_resolve, **kw))


def test_a_playable_body_is_saved(clips: Clips, tmp_path: Path) -> None:
    host = Host(clips.mp4.read_bytes())
    ctx, sleeps = fal_ctx(host)
    dest = tmp_path / "out" / "o.mp4"
    assert get(result_for(URL), dest, ctx, expect_duration=3.2) == dest
    assert dest.read_bytes() == clips.mp4.read_bytes()
    assert len(host.requests) == 1 and sleeps == [] and parts(tmp_path) == []


def test_a_cut_off_body_with_no_size_is_fetched_again(clips: Clips, tmp_path: Path) -> None:
    whole = clips.faststart.read_bytes()
    # The host reports no size; the cut body's own Content-Length agrees with it.
    host = Host(whole[: len(whole) // 2], whole)
    ctx, sleeps = fal_ctx(host)
    dest = tmp_path / "o.mp4"
    get(result_for(URL), dest, ctx)
    assert dest.read_bytes() == whole
    assert len(host.requests) == 2 and len(sleeps) == 1 and parts(tmp_path) == []


@pytest.mark.parametrize(("client_key", "command"), [
    (None, "kling result fal j1 -o OUT.mp4"),
    ("my-key-1", "kling jobs resume my-key-1"),
])
def test_an_unplayable_result_fails_naming_the_job_and_the_command(
    clips: Clips, tmp_path: Path, client_key: str | None, command: str
) -> None:
    whole = clips.mp4.read_bytes()
    host = Host(whole[: len(whole) * 9 // 10])
    ctx, sleeps = fal_ctx(host)
    dest = tmp_path / "o.mp4"
    with pytest.raises(ProtocolError) as info:
        get(result_for(URL), dest, ctx, client_key=client_key)
    message = str(info.value)
    assert "job j1" in message and f"`{command}`" in message and "not a playable video" in message
    assert info.value.code == UNPLAYABLE and info.value.exit_code == 1
    assert len(host.requests) == VERIFY_ATTEMPTS and len(sleeps) == VERIFY_ATTEMPTS - 1
    assert not dest.exists() and parts(tmp_path) == []


def test_an_unplayable_result_leaves_a_reserved_placeholder_alone(clips: Clips, tmp_path: Path) -> None:
    dest = tmp_path / "clip-edited.mp4"
    dest.touch()  # reserved by reserve_default_output
    host = Host(b"<html>nope</html>")
    ctx, _ = fal_ctx(host)
    with pytest.raises(ProtocolError):
        get(result_for(URL), dest, ctx)
    assert dest.exists() and dest.stat().st_size == 0 and parts(tmp_path) == []
    host = Host(clips.mp4.read_bytes())
    ctx, _ = fal_ctx(host)
    get(result_for(URL), dest, ctx)
    assert dest.read_bytes() == clips.mp4.read_bytes()


def test_a_wrong_length_is_fetched_again_then_refused(clips: Clips, tmp_path: Path) -> None:
    host = Host(clips.short.read_bytes())
    ctx, _ = fal_ctx(host)
    with pytest.raises(ProtocolError, match=r"lasts 1\.50 s, the input 3\.20 s"):
        get(result_for(URL), tmp_path / "o.mp4", ctx, expect_duration=3.2)
    assert len(host.requests) == VERIFY_ATTEMPTS and not (tmp_path / "o.mp4").exists()


def test_a_download_that_fails_outright_names_the_command(tmp_path: Path) -> None:
    host = Host(503)
    ctx, _ = fal_ctx(host)
    with pytest.raises(ProviderError) as info:
        get(result_for(URL), tmp_path / "o.mp4", ctx, client_key="k-7")
    assert "`kling jobs resume k-7`" in str(info.value) and "job j1" in str(info.value)
    assert info.value.code == "download_failed" and parts(tmp_path) == []


def test_an_expired_result_is_not_retried(tmp_path: Path) -> None:
    host = Host(404)
    ctx, _ = fal_ctx(host)
    with pytest.raises(ResultExpiredError):
        get(result_for(URL), tmp_path / "o.mp4", ctx)
    assert len(host.requests) == 1


# -- local results: only the provider's own files --------------------------------------------


@pytest.mark.parametrize("url", [
    "file:///proc/self/environ",
    "/etc/passwd",
    "../../etc/passwd",
    "file:///etc/passwd",
    "file://otherhost/share/out.mp4",
    "FILE:///etc/passwd",
])
def test_a_local_result_from_a_host_is_a_protocol_error(tmp_path: Path, url: str) -> None:
    host = Host(b"never")
    ctx, _ = fal_ctx(host, work=tmp_path / "work")
    dest = tmp_path / "o.mp4"
    with pytest.raises(ProtocolError) as info:
        get(result_for(url), dest, ctx)
    assert "job j1" in str(info.value) and info.value.exit_code == 1
    assert host.requests == [] and not dest.exists() and parts(tmp_path) == []


def test_a_link_in_the_work_dir_to_a_file_outside_is_refused(clips: Clips, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "out.mp4").symlink_to(clips.mp4)  # a video, even: but not one the provider wrote
    (work / "env").symlink_to("/proc/self/environ")
    ctx, _ = fal_ctx(work=work)
    for name in ("out.mp4", "env"):
        with pytest.raises(ProtocolError, match="not an http"):
            get(result_for((work / name).as_uri()), tmp_path / "o.mp4", ctx)
    with pytest.raises(ProtocolError):
        get(result_for(f"{work}/../{clips.mp4.name}"), tmp_path / "o.mp4", ctx)
    assert not (tmp_path / "o.mp4").exists()


def test_the_work_dir_comes_from_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    assert own_dirs(ProviderContext(name="segmind")) == ((tmp_path / "cache" / "segmind").resolve(),)
    ctx = ProviderContext(name="mock", media=MediaSettings(work_dir=str(tmp_path / "w")))
    assert own_dirs(ctx) == ((tmp_path / "w").resolve(),)
    ctx = ProviderContext(name="mock", environ={"KLING_CACHE_DIR": str(tmp_path / "c2")})
    assert set(own_dirs(ctx)) == {(tmp_path / "c2" / "mock").resolve(), (tmp_path / "cache" / "mock").resolve()}


def test_an_unplayable_local_result_fails_without_a_retry(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "segmind-k.mp4").write_bytes(b"<html>oops</html>")
    ctx = ProviderContext(name="segmind", work_dir=work)
    with pytest.raises(ProtocolError, match="not a playable video") as info:
        get(result_for((work / "segmind-k.mp4").as_uri(), provider="segmind"), tmp_path / "o.mp4", ctx)
    assert "segmind" in str(info.value) and "job j1" in str(info.value)
    assert not (tmp_path / "o.mp4").exists() and parts(tmp_path) == []


def test_the_mocks_own_render_is_copied_and_verified(tmp_path: Path, sample: SampleMedia) -> None:
    p = provider(tmp_path / "work")
    _handle, seen = run_job(p, request(sample))
    final = seen[-1]
    assert isinstance(final, Succeeded)
    assert final.result.video.url.startswith("file://")
    dest = tmp_path / "saved.mp4"
    asyncio.run(download_result(final.result, dest, p.ctx, expect_duration=3.2))
    assert dest.stat().st_size == final.result.video.file_size
    # The same render claimed by a hosted provider with another work dir is refused.
    other = ProviderContext(name="fal", work_dir=tmp_path / "elsewhere")
    with pytest.raises(ProtocolError):
        asyncio.run(download_result(attrs.evolve(final.result, provider="fal"), tmp_path / "x.mp4", other))


def test_refetch_command_quotes_what_it_names() -> None:
    assert refetch_command("fal", "j 1; rm -rf ~") == "kling result fal 'j 1; rm -rf ~' -o OUT.mp4"
    assert refetch_command("fal", "j1", "k1") == "kling jobs resume k1"


# -- over a real socket: a close-delimited body cut short ------------------------------------


class _CutHandler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0 without Content-Length: the body ends when the server closes the connection.
    protocol_version = "HTTP/1.0"
    bodies: ClassVar[list[bytes]] = []
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = self.bodies[min(len(self.hits), len(self.bodies)) - 1]
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def cut_server() -> Iterator[Callable[[list[bytes]], str]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(bodies: list[bytes]) -> str:
        _CutHandler.bodies, _CutHandler.hits = bodies, []
        return f"http://127.0.0.1:{server.server_address[1]}/out.mp4"

    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()


def test_a_close_delimited_body_cut_short_is_fetched_again(
    clips: Clips, tmp_path: Path, cut_server: Callable[[list[bytes]], str]
) -> None:
    whole = clips.faststart.read_bytes()
    url = cut_server([whole[: len(whole) * 2 // 3], whole])
    sleeps = Sleeps()
    ctx = ProviderContext(name="fal", media=MediaSettings(allow_private_urls=True), sleep=sleeps)
    dest = tmp_path / "o.mp4"
    asyncio.run(download_result(result_for(url), dest, ctx, expect_duration=3.2))
    assert dest.read_bytes() == whole and len(_CutHandler.hits) == 2 and parts(tmp_path) == []

    url = cut_server([whole[: len(whole) // 2]])
    with pytest.raises(ProtocolError) as info:
        asyncio.run(download_result(result_for(url), tmp_path / "p.mp4", ctx))
    assert "job j1" in str(info.value) and "`kling result fal j1 -o OUT.mp4`" in str(info.value)
    assert len(_CutHandler.hits) == VERIFY_ATTEMPTS and not (tmp_path / "p.mp4").exists() and parts(tmp_path) == []


def test_a_killed_earlier_save_leaves_nothing_after_the_next(clips: Clips, tmp_path: Path) -> None:
    stale = [tmp_path / ".o.mp4.0badc0ffee00.part", tmp_path / "..o.mp4.0badc0ffee00.part.123456abcdef.part"]
    for path in stale:
        path.write_bytes(b"half a video")
    other = tmp_path / ".other.mp4.0badc0ffee00.part"
    other.write_bytes(b"another output's")
    host = Host(clips.mp4.read_bytes())
    ctx, _ = fal_ctx(host)
    get(result_for(URL), tmp_path / "o.mp4", ctx)
    assert parts(tmp_path) == [other.name]


def test_a_refused_result_creates_no_folder(tmp_path: Path) -> None:
    host = Host(b"<html>nope</html>")
    ctx, _ = fal_ctx(host)
    with pytest.raises(ProtocolError):
        get(result_for(URL), tmp_path / "a" / "b" / "o.mp4", ctx)
    with pytest.raises(ProtocolError):
        get(result_for("/etc/passwd"), tmp_path / "c" / "o.mp4", ctx)
    assert list(tmp_path.iterdir()) == []
