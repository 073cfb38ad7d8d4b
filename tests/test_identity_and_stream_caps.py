"""Two bounds found in review:

- Where the host reports back (the webhook URL) is not part of what a client key stands for: a
  batch line the host refused (no job made) is sent again, with this run's webhook URL, when
  the receiver's URL changed since; ``--client-key K --webhook NEW`` picks K's job up. Another
  prompt under the key is still refused. (The logged digest keeps the webhook: old logs match.)
- A status stream's unfinished line is bounded: a host sending bytes without a line end loses
  the stream (the job polls on) instead of growing memory until the wait's deadline. Lines are
  split at CRLF, LF and CR, and UTF-8 is decoded, across chunk boundaries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from test_status_stream import STREAM, Host, doc, handle, no_sleep, provider

from kling_core.batches import abatch, load_plan
from kling_core.client import AsyncEditClient, Started
from kling_core.config import config_from_document
from kling_core.errors import ProviderValidationError, ValidationError
from kling_core.http.stream import MAX_LINE_CHARS, StreamLost, sse_events, sse_lines, watch
from kling_core.joblog import JobLog

VIDEO = "https://example.com/clip.mp4"
HOOK_A = "http://127.0.0.1:45678/hooks/fal/a"
HOOK_B = "http://127.0.0.1:45999/hooks/fal/b"
APP = "https://queue.fal.run/fal-ai/kling-video/requests"
SUBMITTED = {"request_id": "r1", "status_url": f"{APP}/r1/status", "response_url": f"{APP}/r1",
             "cancel_url": f"{APP}/r1/cancel", "status": "IN_QUEUE", "queue_position": 0}


def _client(tmp_path: Path) -> AsyncEditClient:
    cfg = config_from_document({"default_provider": "fal", "media": {"work_dir": str(tmp_path / "cache")}})
    return AsyncEditClient(config=cfg, journal=JobLog(tmp_path / "state"), environ={"FAL_KEY": "fake-key:fake"})


def _refuse(request: httpx.Request) -> httpx.Response:
    return httpx.Response(422, json={"detail": [{"loc": ["body", "prompt"], "msg": "bad prompt", "type": "x"}]})


# -- the webhook URL is not part of a client key's request ---------------------------------------


@pytest.mark.parametrize(("before", "after"), [(HOOK_A, None), (None, HOOK_A), (HOOK_A, HOOK_B)])
def test_a_refused_batch_line_is_sent_again_with_this_runs_webhook(
        tmp_path: Path, before: str | None, after: str | None) -> None:
    manifest = tmp_path / "m.jsonl"

    async def batch(hook: str | None) -> tuple[str, list[Any]]:
        row = {"video": VIDEO, "prompt": "night", "quality": "std"}
        manifest.write_text(json.dumps({**row, "webhook_url": hook} if hook else row) + "\n")
        async with _client(tmp_path) as client:
            action = load_plan(client, manifest).lines[0].action
            return action, [r async for r in abatch(manifest, client=client)]

    with respx.mock(assert_all_called=False) as router:
        posts = router.route(method="POST").mock(side_effect=_refuse)
        _, first = asyncio.run(batch(before))
        assert first[0].state == "failed" and first[0].job_id is None
        action, second = asyncio.run(batch(after))
    assert action == "submit"
    assert second[0].state == "failed" and second[0].error_type != "ValidationError", second[0].error
    assert posts.call_count == 2  # no job existed: the line reached the host again
    sent = [call.request.url.params.get("fal_webhook") for call in posts.calls]
    assert sent == [before, after]  # each submit carries its own run's URL


def _start(tmp_path: Path, prompt: str, hook: str | None) -> Started:
    async def go() -> Started:
        async with _client(tmp_path) as client:
            return await client.start(client.request(VIDEO, prompt, client_key="my-key", webhook_url=hook))

    return asyncio.run(go())


def test_a_keys_job_is_picked_up_under_another_webhook_and_another_prompt_is_refused(tmp_path: Path) -> None:
    with respx.mock(assert_all_called=False) as router:
        posts = router.route(method="POST").mock(return_value=httpx.Response(200, json=SUBMITTED))
        first = _start(tmp_path, "night", HOOK_A)
        assert not first.resumed and first.handle.job_id == "r1"
        for hook in (HOOK_B, None):  # the tunnel's URL changed, or no receiver this time
            again = _start(tmp_path, "night", hook)
            assert again.resumed and again.handle.job_id == "r1"
        for prompt, hook in (("day", HOOK_A), ("day", HOOK_B)):
            with pytest.raises(ValidationError, match="already used for a different request") as caught:
                _start(tmp_path, prompt, hook)
            assert [p.path for p in caught.value.problems] == ["client_key"]
    assert posts.call_count == 1


def test_a_refused_key_with_another_prompt_is_still_refused(tmp_path: Path) -> None:
    with respx.mock(assert_all_called=False) as router:
        posts = router.route(method="POST").mock(side_effect=_refuse)
        with pytest.raises(ProviderValidationError):  # the host's refusal: no job made
            _start(tmp_path, "night", HOOK_A)
        with pytest.raises(ValidationError, match="already used for a different request"):
            _start(tmp_path, "day", HOOK_B)
        with pytest.raises(ProviderValidationError):  # the same request, another URL: sent again
            _start(tmp_path, "night", HOOK_B)
    assert posts.call_count == 2
    assert [call.request.url.params.get("fal_webhook") for call in posts.calls] == [HOOK_A, HOOK_B]


# -- the status stream's lines -------------------------------------------------------------------


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _lines(parts: Iterable[bytes]) -> list[str]:
    return [line async for line in sse_lines(_chunks(parts))]


def test_lines_split_at_crlf_lf_and_cr_across_chunks_with_utf8_cut_anywhere() -> None:
    body = "\ufeffdata: é€😀\r\n: note\rdata: b\n\r\nlast\r".encode()
    want = ["data: é€😀", ": note", "data: b", "", "last"]
    assert asyncio.run(_lines([body])) == want
    for cut in range(1, len(body)):  # every place a chunk may end, even inside a CRLF or a character
        assert asyncio.run(_lines([body[:cut], body[cut:]])) == want, cut
    assert asyncio.run(_lines([bytes([b]) for b in body])) == want
    assert asyncio.run(_lines([b"data: a\r", b"", b"\ndata: b\n", b"unfinished"])) == ["data: a", "data: b"]
    assert asyncio.run(_lines([b"bad \xff byte\n"])) == ["bad \ufffd byte"]


def test_an_unfinished_line_is_refused_once_past_the_bound_not_at_the_end() -> None:
    sent = 0
    chunk = 64 * 1024
    endless = 40 * 1024 * 1024 // chunk  # 40 MB: forty times the bound

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b"data: "
        for _ in range(endless):
            sent += 1
            yield b"x" * chunk

    async def read() -> None:
        response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
        async for _event in sse_events(sse_lines(response.aiter_bytes())):
            pass

    with pytest.raises(StreamLost, match="a line longer than"):
        asyncio.run(read())
    assert sent * chunk <= MAX_LINE_CHARS + chunk  # read no further than the bound


def test_a_full_length_data_line_still_passes_the_line_bound() -> None:
    longest = b"data: " + b"x" * (MAX_LINE_CHARS - len("data: "))
    assert asyncio.run(_lines([longest[i:i + 4096] for i in range(0, len(longest), 4096)] + [b"\n"])) == [
        longest.decode()]


def test_a_host_sending_no_line_end_loses_the_stream_and_the_job_polls_on() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(640):  # 40 MB, never ending a line: read whole, it would be "an event too long"
            sent += 1
            yield b"x" * 65536

    def answer() -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=endless())

    host = Host([doc("IN_PROGRESS")], answer)
    why = asyncio.run(watch(provider(host), handle(), on_status=lambda s: None, sleep=no_sleep))
    assert why is not None and "a line longer than" in why
    opens = host.count(STREAM)
    assert opens >= 1 and sent <= opens * (MAX_LINE_CHARS // 65536 + 2)
