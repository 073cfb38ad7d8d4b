"""The guarded fetch against a host that does not play along: encoded bodies, long waits.

Bodies are counted as sent (never decoded by httpx): we ask for ``identity``, so a body with a
Content-Encoding is refused before a byte of it is read. A 429/503's Retry-After is waited out
when it is longer than our own backoff; one over ``MAX_RETRY_AFTER`` ends the download with a
retryable RateLimitedError carrying the wait. No test reaches the network: an injected
MockTransport, or a server on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import http.server
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx
from loopback_servers import serve
from test_guarded_fetch import BODY, Host, Sleeps, as_input, as_result, fake_resolve
from test_segmind_provider import VIDEO
from test_submit_outcomes import SEGMIND_V1, segmind_v1_client

from kling_core.errors import ProviderError, RateLimitedError, SubmitUncertainError, UnsafeMediaError
from kling_core.files import StreamIncomplete
from kling_core.media.fetch import MAX_ATTEMPTS, MAX_RETRY_AFTER, StreamEncoded, fetch, write_stream
from kling_core.settings import MediaSettings

URL = "https://cdn.example/v.mp4"
CAP = 256 * 1024
# 8 MiB of zeros: about 8 KB gzipped, 32 times the cap once decoded.
BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024), compresslevel=9)


class Pulled:
    """A streamed body that counts the chunks read from it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.count = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.count += 1
            yield chunk


def _fetch_with(transport: httpx.MockTransport, dest: Path, **kw: Any) -> Path:
    return asyncio.run(fetch(URL, dest, settings=MediaSettings(max_download_bytes=CAP), field="video",
                             transport=transport, resolve=fake_resolve, sleep=Sleeps(), **kw))


# -- Content-Encoding ----------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "GZIP", "identity, gzip"])
def test_an_encoded_body_is_refused_unread_naming_the_header(coding: str, tmp_path: Path) -> None:
    body = Pulled([BOMB[i:i + 4096] for i in range(0, len(BOMB), 4096)])
    host = Host(lambda r, n: httpx.Response(200, headers={"content-encoding": coding}, content=body))
    with pytest.raises(UnsafeMediaError, match="Content-Encoding: " + coding) as caught:
        _fetch_with(host.transport, tmp_path / "v.mp4")
    assert caught.value.field == "video"
    assert body.count == 0  # not a byte read, so nothing decoded
    assert len(host.requests) == 1 and host.requests[0].headers["accept-encoding"] == "identity"
    assert list(tmp_path.iterdir()) == []


def test_an_encoded_body_is_refused_into_a_staging_file_too(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.write_bytes(b"old")
    body = Pulled([BOMB])
    host = Host(lambda r, n: httpx.Response(200, headers={"content-encoding": "gzip"}, content=body))
    with pytest.raises(UnsafeMediaError, match="Content-Encoding: gzip"):
        _fetch_with(host.transport, staging, in_place=True)
    assert body.count == 0 and staging.read_bytes() == b""


@pytest.mark.parametrize("coding", ["identity", "", "none", "binary"])  # nothing decodes the last two
def test_an_identity_body_is_kept_as_sent(coding: str, tmp_path: Path) -> None:
    host = Host(lambda r, n: httpx.Response(200, headers={"content-encoding": coding}, content=BODY))
    assert _fetch_with(host.transport, tmp_path / "v.mp4").read_bytes() == BODY


def test_write_stream_refuses_an_encoded_body_as_a_stream_it_cannot_keep(tmp_path: Path) -> None:
    # The other caller of write_stream (a submit answer saved as the video) maps StreamIncomplete.
    async def run() -> None:
        body = Pulled([zlib.compress(BODY)])
        transport = httpx.MockTransport(
            lambda r: httpx.Response(200, headers={"content-encoding": "deflate"}, content=body))
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.send(httpx.Request("GET", "http://host.example/v"), stream=True)
            with pytest.raises(StreamEncoded) as caught:
                await write_stream(response, tmp_path / "v.mp4", cap=CAP)
            assert isinstance(caught.value, StreamIncomplete) and body.count == 0
            await response.aclose()

    asyncio.run(run())
    assert list(tmp_path.iterdir()) == []


def test_a_segmind_v1_video_answer_sent_encoded_is_uncertain_never_a_refusal(tmp_path: Path) -> None:
    # The job ran (and was paid) before its answer was refused: a re-run must not submit again.
    router = respx.Router()
    route = router.post(SEGMIND_V1).mock(return_value=httpx.Response(
        200, content=gzip.compress(BODY), headers={"content-type": "video/mp4", "content-encoding": "gzip"}))
    client = segmind_v1_client(tmp_path, router)
    with pytest.raises(SubmitUncertainError, match="StreamEncoded"):
        asyncio.run(client.start(client.request(VIDEO, "x", client_key="v1-gz")))
    assert client.journal is not None
    record = client.journal.get("v1-gz")
    assert record is not None and record.state == "uncertain"
    assert route.call_count == 1
    assert [p.name for p in (tmp_path / "work").rglob("*") if p.is_file()] == []


class _Gzipping(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a gzip body whatever Accept-Encoding said; counts the GETs."""

    body: ClassVar[bytes] = b""
    gets: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).gets.append(self.headers.get("accept-encoding", ""))
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("payload", [BOMB, gzip.compress(BODY)], ids=["bomb", "honest-gzip"])
@pytest.mark.parametrize("get", [as_result, as_input], ids=["result", "input"])
def test_a_gzip_body_on_the_wire_is_refused_once_not_decoded_or_retried(
    payload: bytes, get: Any, tmp_path: Path,
) -> None:
    handler = type("H", (_Gzipping,), {"body": payload, "gets": []})
    media = MediaSettings(allow_private_urls=True, max_download_bytes=CAP)
    with serve(handler) as base, pytest.raises(UnsafeMediaError, match="Content-Encoding: gzip"):
        asyncio.run(get(f"{base}/v.mp4", tmp_path, media=media, resolve=None))
    assert handler.gets == ["identity"]  # asked for identity, refused at once: no retry
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


# -- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_in_seconds_is_waited_out(status: int, tmp_path: Path) -> None:
    answers = iter([httpx.Response(status, headers={"retry-after": "30"}), httpx.Response(200, content=BODY)])
    host = Host(lambda r, n: next(answers))
    sleeps = Sleeps()
    path = asyncio.run(fetch(URL, tmp_path / "v.mp4", settings=MediaSettings(), field="video",
                             transport=host.transport, resolve=fake_resolve, sleep=sleeps))
    assert path.read_bytes() == BODY
    assert sleeps == [30.0]


def test_a_retry_after_date_is_waited_out(tmp_path: Path) -> None:
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    answers = iter([httpx.Response(503, headers={"retry-after": when}), httpx.Response(200, content=BODY)])
    host = Host(lambda r, n: next(answers))
    sleeps = Sleeps()
    asyncio.run(fetch(URL, tmp_path / "v.mp4", settings=MediaSettings(), field="video",
                      transport=host.transport, resolve=fake_resolve, sleep=sleeps))
    assert len(sleeps) == 1 and 50 <= sleeps[0] <= 60


def test_a_short_retry_after_does_not_shorten_the_backoff(tmp_path: Path) -> None:
    answers = iter([httpx.Response(429, headers={"retry-after": "0"}), httpx.Response(200, content=BODY)])
    host = Host(lambda r, n: next(answers))
    sleeps = Sleeps()
    asyncio.run(fetch(URL, tmp_path / "v.mp4", settings=MediaSettings(), field="video",
                      transport=host.transport, resolve=fake_resolve, sleep=sleeps))
    assert len(sleeps) == 1 and sleeps[0] >= 0.75  # RETRY_BACKOFF's first delay, less its jitter


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_over_the_limit_is_a_retryable_rate_limit_carrying_the_wait(status: int, tmp_path: Path) -> None:
    wait = MAX_RETRY_AFTER + 3600
    host = Host(lambda r, n: httpx.Response(status, headers={"retry-after": f"{wait:.0f}"}))
    sleeps = Sleeps()
    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(fetch(URL, tmp_path / "v.mp4", settings=MediaSettings(), field="video",
                          transport=host.transport, resolve=fake_resolve, sleep=sleeps, provider="fal", job_id="j1"))
    err = caught.value
    assert err.retryable and err.retry_after == wait and err.status_code == status and err.job_id == "j1"
    assert f"wait {wait:.0f} s" in str(err)
    assert len(host.requests) == 1 and sleeps == []  # not held open, not retried blindly


def test_retries_without_a_hint_still_run_out(tmp_path: Path) -> None:
    host = Host(lambda r, n: httpx.Response(503))
    with pytest.raises(ProviderError, match="download") as caught:
        asyncio.run(fetch(URL, tmp_path / "v.mp4", settings=MediaSettings(), field="video",
                          transport=host.transport, resolve=fake_resolve, sleep=Sleeps()))
    assert caught.value.code == "download_failed" and len(host.requests) == MAX_ATTEMPTS
