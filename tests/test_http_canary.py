"""A canary key runs through every fal and Segmind path and must show up nowhere (R7).

Every cassette (success and each failure) is replayed with DEBUG logging on the httpx, httpcore
and kling_core loggers; then a real-socket run against a loopback server that echoes the key
back in a header and an error body. The canary may only ever travel in the auth header.
"""

from __future__ import annotations

import asyncio
import http.server
import importlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import kling_core_plugins.fal
import kling_core_plugins.segmind
import pytest

from kling_core.contract.models import EditRequest
from kling_core.errors import KlingError
from kling_core.provider import Provider, ProviderContext
from kling_core.serialization import unstructure
from kling_core.settings import ProviderSettings
from kling_core.testing.cassettes import load_cassettes

replay_mod = importlib.import_module("kling_core.testing.replay")

CANARY = f"sk-CANARY-{uuid.uuid4()}"
LOGGERS = ("httpx", "httpcore", "kling_core")
PROVIDERS: list[tuple[type[Provider], Path]] = [
    (kling_core_plugins.fal.FalProvider, Path(kling_core_plugins.fal.__file__).parent / "cassettes"),
    (kling_core_plugins.segmind.SegmindProvider, Path(kling_core_plugins.segmind.__file__).parent / "cassettes"),
]


def _texts(value: Any) -> list[str]:
    out = [repr(value), str(value)]
    if attrs.has(type(value)):
        out.append(json.dumps(unstructure(value), default=str))
    if isinstance(value, BaseException):
        out.append(repr(vars(value)))
        cause = value.__cause__ or value.__context__
        if cause is not None:
            out += [repr(cause), str(cause)]
    return out


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


@pytest.mark.parametrize("provider_cls,folder", PROVIDERS, ids=["fal", "segmind"])
def test_every_cassette_path_keeps_the_canary_hidden(
    provider_cls: type[Provider], folder: Path, debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setattr(replay_mod, "canary_credentials", lambda cls: {s.env: CANARY for s in cls.credentials})
    cassettes = load_cassettes(folder)
    assert len(cassettes) >= 15
    seen_errors = 0
    for cassette in cassettes:
        outcome = replay_mod.replay(provider_cls, cassette, work_dir=tmp_path)
        assert outcome.failures == [], (cassette.scenario, outcome.failures)
        for step in outcome.outcomes:
            for text in _texts(step.value) + (_texts(step.error) if step.error else []):
                assert CANARY not in text, (cassette.scenario, step.step.op)
            seen_errors += step.error is not None
        # The canary went out, but only in the auth header.
        assert any(CANARY in v for r in outcome.requests for v in r.headers.values()) or not outcome.requests
    assert seen_errors >= 5
    assert debug_logs.records, "DEBUG logging produced nothing: the test would prove nothing"
    assert any("headers=" in r.getMessage() for r in debug_logs.records)
    assert CANARY not in debug_logs.text
    provider = provider_cls(ProviderContext(name=provider_cls.name, environ={provider_cls.credentials[0].env: CANARY}))
    assert CANARY not in repr(provider) and CANARY not in str(provider.secrets)


# -- over a real socket (httpx + httpcore logging for real) ------------------------------------


class _FalLike(http.server.BaseHTTPRequestHandler):
    """Just enough of fal's queue to run submit → status → result, echoing the key back."""

    keys: ClassVar[list[str]] = []
    base: ClassVar[str] = ""
    protocol_version = "HTTP/1.1"  # keep-alive, so connections are pooled as with a real host

    def _send(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", self.headers.get("authorization", ""))  # a careless host
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.keys.append(self.headers.get("authorization", ""))
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if "reject" in self.path:
            self._send(401, {"detail": f"Unauthorized: {self.headers.get('authorization')}"})
            return
        r = f"{self.base}/fal-ai/kling-video/requests/req-1"
        self._send(200, {"request_id": "req-1", "status_url": f"{r}/status", "response_url": r, "cancel_url": f"{r}/cancel"})

    def do_GET(self) -> None:
        self.keys.append(self.headers.get("authorization", ""))
        if self.path.startswith("/fal-ai/kling-video/requests/req-1/status"):
            self._send(200, {"status": "COMPLETED", "logs": [{"message": "done"}], "error": None})
        else:
            self._send(200, {"video": {"url": "https://v3b.fal.media/files/out.mp4", "file_size": 10}})

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def fal_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FalLike)
    _FalLike.base = f"http://127.0.0.1:{server.server_address[1]}"
    _FalLike.keys = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield _FalLike.base
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_run_with_real_transport_logs_no_secret(fal_server: str, debug_logs: pytest.LogCaptureFixture) -> None:
    ctx = ProviderContext(
        name="fal", settings=ProviderSettings(base_url=fal_server), environ={"FAL_KEY": CANARY},
    )
    provider = kling_core_plugins.fal.FalProvider(ctx)
    request = EditRequest(prompt="Turn the sky into a sunset", video="https://media.example.com/a.mp4")

    async def go() -> list[Any]:
        out: list[Any] = []
        try:
            handle = await provider.submit(request)
            out += [handle, await provider.status(handle)]
            bad = attrs.evolve(request, options={})
            provider2 = kling_core_plugins.fal.FalProvider(attrs.evolve(ctx, settings=ProviderSettings(base_url=fal_server + "/reject")))
            try:
                await provider2.submit(bad)
            except KlingError as exc:
                out.append(exc)
            finally:
                await provider2.aclose()
        finally:
            await provider.aclose()
        return out

    values = asyncio.run(go())
    assert values[1].state == "succeeded"
    assert isinstance(values[2], KlingError) and values[2].status_code == 401  # type: ignore[attr-defined]
    assert _FalLike.keys and all(k == f"Key {CANARY}" for k in _FalLike.keys)
    assert any(r.name.startswith("httpcore") for r in debug_logs.records), "httpcore did not log: test is void"
    assert any(r.name == "httpx" for r in debug_logs.records)
    assert CANARY not in debug_logs.text
    for value in values:
        for text in _texts(value):
            assert CANARY not in text


def test_a_provider_survives_successive_event_loops(fal_server: str) -> None:
    provider = kling_core_plugins.fal.FalProvider(
        ProviderContext(name="fal", settings=ProviderSettings(base_url=fal_server), environ={"FAL_KEY": CANARY})
    )
    request = EditRequest(prompt="Turn the sky into a sunset", video="https://media.example.com/a.mp4")
    handle = asyncio.run(provider.submit(request))
    status = asyncio.run(provider.status(handle))  # a second loop: the pooled connection is not reused
    asyncio.run(provider.aclose())
    assert status.state == "succeeded"
