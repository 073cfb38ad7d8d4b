"""Recording (against a fake live host on an injected transport), scrubbing and the secrets scan."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from kling_core.contract.models import EditRequest
from kling_core.errors import ValidationError
from kling_core.testing.cassettes import load_cassette
from kling_core.testing.record import record_scenario, scrub_header, scrub_json, write_cassette
from kling_core.testing.replay import replay
from kling_core.testing.secrets import assert_no_secrets, scan_document

ROOT = Path(__file__).resolve().parents[1]
LIVE_KEY = "evk_live_4f8a2c9e1b7d6a3f"
kling_example = pytest.importorskip("kling_example", reason="pip install -e examples/kling-example-provider")


class FakeLiveHost:
    """The Example Video API as a live host would behave, leaking the key back as real hosts do."""

    def __init__(self) -> None:
        self.polls = 0
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {LIVE_KEY}"
        if request.method == "POST" and request.url.path == "/v1/edits":
            self.posts += 1
            return httpx.Response(201, json={"id": "ed_live01", "status": "queued", "account": {"api_key": LIVE_KEY}},
                                  headers={"set-cookie": f"sid={LIVE_KEY}", "x-request-id": "r1"})
        if request.method == "GET" and request.url.path == "/v1/edits/ed_live01":
            self.polls += 1
            if self.polls == 1:
                return httpx.Response(200, json={"id": "ed_live01", "status": "processing", "progress": 30})
            return httpx.Response(200, json={
                "id": "ed_live01", "status": "succeeded",
                "output": {"url": f"https://cdn.example-video.test/o.mp4?token={LIVE_KEY}", "size_bytes": 10},
            })
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})


def _record(tmp_path: Path) -> tuple[dict[str, Any], FakeLiveHost]:
    host = FakeLiveHost()

    async def no_wait(seconds: float) -> None:
        return None

    doc = asyncio.run(record_scenario(
        kling_example.ExampleProvider,
        scenario="recorded-success",
        request=EditRequest(prompt="Make it snow", video="https://media.example.com/v.mp4"),
        environ={"EXAMPLE_VIDEO_API_KEY": LIVE_KEY},
        inner=httpx.MockTransport(host),
        sleep=no_wait,
        today=dt.date(2026, 11, 20),
    ))
    return doc, host


def test_recorder_writes_a_scrubbed_cassette_that_replays(tmp_path: Path) -> None:
    doc, host = _record(tmp_path)
    assert host.posts == 1 and host.polls == 2
    path = write_cassette(doc, tmp_path / "recorded-success.json", secrets=[LIVE_KEY])
    text = path.read_text("utf-8")
    assert LIVE_KEY not in text
    assert "set-cookie" not in text and "x-request-id" not in text, "only compared headers are kept"
    assert [s["op"] for s in doc["steps"]] == ["submit", "status", "status"]
    submit = doc["steps"][0]["interactions"][0]
    assert submit["provenance"] == {"source": "recorded", "date": "2026-11-20"}
    assert submit["request"]["headers"]["authorization"] == "Bearer <SECRET>"
    assert submit["response"]["json"]["account"]["api_key"] == "<SECRET>"
    final = doc["steps"][2]["interactions"][0]["response"]["json"]["output"]["url"]
    assert final == "https://cdn.example-video.test/o.mp4?token=<SECRET>"
    assert doc["steps"][2]["expect"] == {"status": {"state": "succeeded", "job_id": "ed_live01"}}
    # the recorded cassette is a valid cassette and replays offline against the provider
    outcome = replay(kling_example.ExampleProvider, load_cassette(path))
    assert outcome.failures == []


def test_write_refuses_secrets_and_leaves_nothing(tmp_path: Path) -> None:
    doc, _ = _record(tmp_path)
    doc["steps"][0]["interactions"][0]["response"]["json"]["leak"] = LIVE_KEY
    target = tmp_path / "out" / "leaky.json"
    with pytest.raises(ValidationError, match="refusing to write a cassette holding secrets"):
        write_cassette(doc, target, secrets=[LIVE_KEY])
    assert not target.exists()
    assert not list(tmp_path.glob("out/.leaky*")), "no temporary file left behind"


def test_write_validates_before_writing(tmp_path: Path) -> None:
    doc, _ = _record(tmp_path)
    doc["steps"][0]["op"] = "create"
    with pytest.raises(ValidationError, match=r"steps\[0\]\.op"):
        write_cassette(doc, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.parametrize(
    ("name", "value", "want"),
    [
        ("Authorization", "Key abc:def", "Key <SECRET>"),
        ("authorization", "Bearer eyJhbGciOi.x.y", "Bearer <SECRET>"),
        ("x-api-key", "SG_fake456789abcdef", "<SECRET>"),
        ("x-key", "tok", "<SECRET>"),
        ("content-type", "application/json", "application/json"),
        ("x-trace", f"id-{LIVE_KEY}", "id-<SECRET>"),
    ],
)
def test_scrub_header(name: str, value: str, want: str) -> None:
    assert scrub_header(name, value, [LIVE_KEY]) == want


def test_scrub_json_reaches_keys_and_nested_values() -> None:
    doc = {"a": [LIVE_KEY, {"b": f"x{LIVE_KEY}y"}], LIVE_KEY: 1, "n": 3}
    assert scrub_json(doc, [LIVE_KEY]) == {"a": ["<SECRET>", {"b": "x<SECRET>y"}], "<SECRET>": 1, "n": 3}


@pytest.mark.parametrize(
    ("doc", "finding"),
    [
        ({"steps": [{"headers": {"authorization": "Key 1234567890abcdef1234"}}]}, "auth header not scrubbed"),
        ({"steps": [{"headers": {"X-API-Key": "SG_abcdefgh12345"}}]}, "auth header not scrubbed"),
        ({"steps": [{"headers": {"cookie": "sid=1"}}]}, "auth header not scrubbed"),
        ({"note": "call with Key fakedefghijklmnop0123"}, "fal-style"),
        ({"note": "Bearer eyJhbGciOiJIUzI1NiJ9"}, "bearer JWT"),  # fake: a bare JWT header, no key
        ({"x": ["SG_fakeef1234567"]}, "Segmind key"),
        ({"x": "sk-proj-abcdefghijklmnop1234"}, "sk- API key"),
        ({"x": "sk-CANARY-0d9e8f"}, "canary"),
        ({"x": "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhYmNkZWYifQ.c2lnbmF0dXJlMTIzNDU"}, "a JWT"),
    ],
)
def test_secrets_scan_finds_each_shape(doc: Any, finding: str) -> None:
    findings = scan_document(doc)
    assert findings and any(finding in f for f in findings), findings


def test_secrets_scan_accepts_scrubbed_values() -> None:
    doc = {"headers": {"authorization": "Key <SECRET>", "x-api-key": "<SECRET>", "content-type": "application/json"},
           "json": {"prompt": "a sky full of keys", "url": "https://x.example/?token=<SECRET>"}}
    assert scan_document(doc) == []


def test_secrets_scan_with_known_values(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"x": f"prefix{LIVE_KEY}"}), "utf-8")
    with pytest.raises(AssertionError, match=r"c.json: x: holds a known credential value"):
        assert_no_secrets([path], extra_values=[LIVE_KEY])


def test_no_cassette_in_the_repo_holds_a_secret() -> None:
    files = [p for p in ROOT.glob("**/cassettes/*.json") if not {".git", ".nox", "build"} & set(p.parts)]
    assert files
    assert_no_secrets(files)


class _LoopbackHandler(BaseHTTPRequestHandler):
    """The Example Video API on 127.0.0.1, for the opt-in record mode end to end."""

    polls = 0

    def _send(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("authorization") != f"Bearer {LIVE_KEY}":
            return self._send(401, {"error": {"code": "invalid_api_key", "message": "no"}})
        self._send(201, {"id": "ed_loop1", "status": "queued", "echo_key": LIVE_KEY})

    def do_GET(self) -> None:
        type(self).polls += 1
        if type(self).polls == 1:
            return self._send(200, {"id": "ed_loop1", "status": "processing", "progress": 50})
        self._send(200, {"id": "ed_loop1", "status": "succeeded", "output": {"url": "https://cdn.example-video.test/l.mp4"}})

    def log_message(self, *args: Any) -> None:
        return None


def test_kling_record_rewrites_cassettes_against_a_live_host(tmp_path: Path) -> None:
    """`pytest --kling-record` end to end, the "live" host being a loopback server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoopbackHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = Path(kling_example.__file__).parent / "cassettes"
        folder = tmp_path / "cassettes"
        folder.mkdir()
        for name in ("success-o1.json", "error-rate-limited.json"):
            doc = json.loads((source / name).read_text("utf-8"))
            doc["settings"]["base_url"] = f"http://127.0.0.1:{server.server_port}"
            (folder / name).write_text(json.dumps(doc), "utf-8")
        untouched = (folder / "error-rate-limited.json").read_text("utf-8")
        (tmp_path / "test_rec.py").write_text(
            "from kling_core.testing import ProviderContractTests\n"
            "from kling_example import ExampleProvider\n"
            "class TestRec(ProviderContractTests):\n"
            "    provider_name = 'example'\n"
            "    provider_cls = ExampleProvider\n"
            f"    cassette_dir = {str(folder)!r}\n",
            "utf-8",
        )
        (tmp_path / "pytest.ini").write_text("[pytest]\n", "utf-8")
        env = {**os.environ, "EXAMPLE_VIDEO_API_KEY": LIVE_KEY}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(tmp_path), "-c", str(tmp_path / "pytest.ini"), "-p", "no:cacheprovider",
             "-q", "-rs", "-k", "test_wire_cassette_replays", "--kling-record"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False,
        )
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    assert "ends in RateLimitedError: not reproducible live; kept as is" in proc.stdout
    recorded = (folder / "success-o1.json").read_text("utf-8")
    assert LIVE_KEY not in recorded
    doc = json.loads(recorded)
    first = doc["steps"][0]["interactions"][0]
    assert first["provenance"]["source"] == "recorded"
    assert first["request"]["headers"]["authorization"] == "Bearer <SECRET>"
    assert first["response"]["json"]["echo_key"] == "<SECRET>"
    assert [s["op"] for s in doc["steps"]] == ["submit", "status", "status"]
    assert (folder / "error-rate-limited.json").read_text("utf-8") == untouched
