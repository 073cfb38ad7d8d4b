"""The emulator's fal wire format without a render: bad requests, auth, cancel, webhooks, state.

Every bad request gets fal's own status and shape, never a 500, and the emulator's log holds
no traceback. These run with ``render="sample"``: nothing is encoded per job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import poll
from loopback_servers import receiver

from kling_core.emulator.failures import choose, split_tag
from kling_core.emulator.hosts import check_hosts
from kling_core.emulator.media import DownloadRefused, MediaResolver
from kling_core.emulator.settings import load_settings_file
from kling_core.emulator.storage import Storage, safe_name
from kling_core.emulator.testing import start_emulator
from kling_core.errors import ConfigError

pytestmark = pytest.mark.kling_emulator(render="sample", max_json_bytes=64 * 1024)
SUBMIT = "fal-ai/kling-video/o1/video-to-video/edit"
BODY = {"prompt": "make it dusk", "video_url": "http://127.0.0.1:9/clip.mp4"}


def _wait(http: httpx.Client, status_url: str) -> dict[str, Any]:
    doc: dict[str, Any] = poll(http, status_url, lambda doc: doc["status"] == "COMPLETED")
    return doc


@pytest.fixture
def fal(kling_emulator: Any) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(headers={"authorization": f"Key {kling_emulator.keys['fal']}"}, timeout=20) as http:
        yield http, kling_emulator.urls["fal"]


BAD_REQUESTS = [
    # (name, method, path, headers, body, status, check on the JSON answer)
    ("malformed JSON", "POST", SUBMIT, {}, b'{"prompt": ', 422, lambda d: d["detail"][0]["type"] == "json_invalid"),
    ("not UTF-8", "POST", SUBMIT, {}, b'{"prompt": "\xff"}', 422, lambda d: d["detail"][0]["type"] == "json_invalid"),
    ("deeply nested", "POST", SUBMIT, {}, b"[" * 100_000 + b"]" * 100_000, 413, lambda d: "too large" in d["detail"]),
    ("nested within the cap", "POST", SUBMIT, {}, b"[" * 30_000 + b"]" * 30_000, 422,
     lambda d: d["detail"][0]["type"] in ("json_invalid", "model_attributes_type")),
    ("a JSON list", "POST", SUBMIT, {}, b"[1, 2]", 422, lambda d: d["detail"][0]["type"] == "model_attributes_type"),
    ("wrong types", "POST", SUBMIT, {}, json.dumps({"prompt": 1, "video_url": ["x"], "keep_audio": "maybe",
                                                    "image_urls": "a.png"}).encode(), 422,
     lambda d: [e["type"] for e in d["detail"]] == ["string_type", "string_type", "bool_parsing", "list_type"]),
    ("missing fields", "POST", SUBMIT, {}, b"{}", 422,
     lambda d: [e["loc"] for e in d["detail"]] == [["body", "prompt"], ["body", "video_url"]]),
    ("prompt too long", "POST", SUBMIT, {}, json.dumps({**BODY, "prompt": "x" * 2501}).encode(), 422,
     lambda d: d["detail"][0]["type"] == "string_too_long" and d["detail"][0]["ctx"] == {"max_length": 2500}),
    ("too many references", "POST", SUBMIT, {}, json.dumps({**BODY, "image_urls": ["a"] * 5}).encode(), 422,
     lambda d: d["detail"][0]["type"] == "too_long"),
    ("element without references", "POST", SUBMIT, {}, json.dumps(
        {**BODY, "elements": [{"frontal_image_url": "f.png", "reference_image_urls": []}]}).encode(), 422,
     lambda d: d["detail"][0]["loc"] == ["body", "elements", 0, "reference_image_urls"]),
    ("oversized body", "POST", SUBMIT, {}, json.dumps({**BODY, "pad": "x" * 70_000}).encode(), 413,
     lambda d: d["error_type"] == "bad_request"),
    ("unknown scripted failure", "POST", SUBMIT, {}, json.dumps({**BODY, "prompt": "x [fail:nope]"}).encode(), 400,
     lambda d: d["error_type"] == "bad_request" and "nope" in d["detail"]),
    ("bad timeout header", "POST", SUBMIT, {"x-fal-request-timeout": "0.5"}, json.dumps(BODY).encode(), 400,
     lambda d: d["error_type"] == "bad_request"),
    ("unknown model", "POST", "fal-ai/kling-video/o9/edit", {}, json.dumps(BODY).encode(), 404,
     lambda d: d == {"detail": "Not Found"}),
    ("unknown path", "GET", "nothing/here", {}, b"", 404, lambda d: d == {"detail": "Not Found"}),
    ("wrong method", "GET", SUBMIT, {}, b"", 405, lambda d: d == {"detail": "Method Not Allowed"}),
    ("unknown request", "GET", "fal-ai/kling-video/requests/nope/status", {}, b"", 404,
     lambda d: d == {"detail": "Request not found"}),
    ("cancel unknown", "PUT", "fal-ai/kling-video/requests/nope/cancel", {}, b"", 404,
     lambda d: d == {"status": "NOT_FOUND"}),
    ("missing key", "POST", SUBMIT, {"authorization": ""}, json.dumps(BODY).encode(), 401,
     lambda d: d == {"detail": "Unauthorized"}),
    ("Bearer instead of Key", "POST", SUBMIT, {"authorization": "Bearer abc"}, json.dumps(BODY).encode(), 401,
     lambda d: d == {"detail": "Unauthorized"}),
    ("a key not configured", "POST", SUBMIT, {"authorization": "Key someone-else"}, json.dumps(BODY).encode(), 401,
     lambda d: d == {"detail": "Unauthorized"}),
    ("bad storage token", "POST", "cdn/files/upload", {"authorization": "Bearer cdn1.x"}, b"abc", 401,
     lambda d: d == {"detail": "Unauthorized"}),
    ("missing stored file", "GET", "cdn/files/abcdefgh/x.mp4", {}, b"", 404, lambda d: d == {"detail": "Not Found"}),
]


@pytest.mark.parametrize(("name", "method", "path", "headers", "body", "status", "check"), BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_fals_shapes(kling_emulator: Any, fal: tuple[httpx.Client, str], name: str, method: str,
                                      path: str, headers: dict[str, str], body: bytes, status: int, check: Any) -> None:
    http, base = fal
    sent = dict(headers)
    if sent.get("authorization") == "":
        sent.pop("authorization")
        http.headers.pop("authorization")
    answer = http.request(method, f"{base}/{path}", content=body, headers=sent)
    assert answer.status_code == status, answer.text
    assert check(answer.json()), answer.text
    assert not [line for line in kling_emulator.lines if "Traceback" in line or '" 500 ' in line]


def test_garbage_http_and_unknown_prefixes_do_not_crash_it(kling_emulator: Any) -> None:
    host, port = kling_emulator.origin.split("://")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    answer = httpx.get(f"{kling_emulator.origin}/segmind/v1/x")
    assert answer.status_code == 404 and "emulated hosts: /fal" in answer.json()["detail"]
    assert not [line for line in kling_emulator.lines if "Traceback" in line]


def test_status_cycle_queue_position_logs_and_cancel(kling_emulator: Any, fal: tuple[httpx.Client, str]) -> None:
    http, base = fal
    first = http.post(f"{base}/{SUBMIT}", json={**BODY, "prompt": "hang [fail:timeout]"}).json()
    second = http.post(f"{base}/{SUBMIT}", json=BODY).json()
    assert first["status"] == "IN_QUEUE" and first["response_url"] == f"{base}/fal-ai/kling-video/requests/{first['request_id']}"
    queued = http.get(second["status_url"], params={"logs": "1"})
    assert queued.status_code == 202 and queued.json()["queue_position"] == 1
    assert queued.json()["logs"][0]["message"] == "Request queued"
    assert http.get(second["status_url"]).json()["logs"] is None  # not asked for
    assert http.get(second["response_url"]).status_code == 400  # still in progress
    done = _wait(http, second["status_url"])
    assert done["error"] is None and done["metrics"]["inference_time"] >= 0
    assert http.get(second["response_url"]).json()["video"]["file_name"] == "output.mp4"
    running = http.get(first["status_url"])
    assert running.status_code == 202 and running.json()["status"] == "IN_PROGRESS"
    cancel = http.put(first["cancel_url"])
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert http.get(first["status_url"]).json()["error_type"] == "client_cancelled"
    again = http.put(first["cancel_url"])
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})
    result = http.get(first["response_url"])
    assert result.status_code == 499 and result.headers["x-fal-error-type"] == "client_cancelled"


@pytest.mark.parametrize(("failure", "status", "body"), [
    ("rate_limited", 429, {"detail": "Rate limit exceeded"}),
    ("insufficient_credits", 403, None),
    ("server_error", 500, {"detail": "Internal server error", "error_type": "internal_error"}),
])
def test_submit_phase_failures_by_header(fal: tuple[httpx.Client, str], failure: str, status: int, body: Any) -> None:
    http, base = fal
    answer = http.post(f"{base}/{SUBMIT}", json=BODY, headers={"x-kling-emulator-fail": failure})
    assert answer.status_code == status
    if body is not None:
        assert answer.json() == body
    else:
        assert answer.json()["detail"].startswith("User is locked. Reason: Exhausted balance")


def test_webhooks_are_signed_with_the_served_jwks(kling_emulator: Any, fal: tuple[httpx.Client, str]) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    http, base = fal
    with receiver() as (hook_url, received):
        hook = f"{hook_url}?job=1"
        ok = http.post(f"{base}/{SUBMIT}", params={"fal_webhook": hook}, json=BODY).json()
        failed = http.post(f"{base}/{SUBMIT}", params={"fal_webhook": hook},
                           json={**BODY, "prompt": "x [fail:content_policy]"}).json()
        outside = http.post(f"{base}/{SUBMIT}", params={"fal_webhook": "https://hooks.example.com/x"}, json=BODY).json()
        for job in (ok, failed, outside):
            _wait(http, job["status_url"])
        received.wait(2)
    jwks = httpx.get(f"{base}/rest/.well-known/jwks.json").json()
    keys = [Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["x"] + "=" * (-len(k["x"]) % 4)))
            for k in jwks["keys"]]
    payloads = {}
    for headers, body in received:
        message = "\n".join([headers["x-fal-webhook-request-id"], headers["x-fal-webhook-user-id"],
                             headers["x-fal-webhook-timestamp"], hashlib.sha256(body).hexdigest()]).encode()
        keys[0].verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message)  # raises if forged
        assert abs(time.time() - int(headers["x-fal-webhook-timestamp"])) < 300
        doc = json.loads(body)
        payloads[doc["request_id"]] = doc
    assert set(payloads) == {ok["request_id"], failed["request_id"]}
    assert payloads[ok["request_id"]]["status"] == "OK" and payloads[ok["request_id"]]["payload"]["video"]["url"]
    bad = payloads[failed["request_id"]]
    assert bad["status"] == "ERROR" and bad["error"] == "Invalid status code: 422"
    assert bad["payload"]["detail"][0]["type"] == "content_policy_violation"
    assert any("hooks.example.com" in line and "not sent" in line for line in kling_emulator.lines)


def test_state_folder_keeps_jobs_across_restarts(tmp_path: Path) -> None:
    with start_emulator(tmp_path / "state", render="sample") as emu, \
            httpx.Client(headers={"authorization": f"Key {emu.keys['fal']}"}) as http:
        job = http.post(f"{emu.urls['fal']}/{SUBMIT}", json=BODY).json()
        _wait(http, job["status_url"])
        port = int(emu.origin.rsplit(":", 1)[1])
    assert not emu.emulator.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # nothing listens any more
    with start_emulator(tmp_path / "state", render="sample", any_key=True) as emu, \
            httpx.Client(headers={"authorization": "Key another"}) as http:
        base = emu.urls["fal"]
        status = http.get(f"{base}/fal-ai/kling-video/requests/{job['request_id']}/status")
        assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
        assert http.get(f"{base}/fal-ai/kling-video/requests/{job['request_id']}").json()["video"]["file_size"] > 0


# -- pieces -----------------------------------------------------------------------------------
def test_failure_tags_headers_and_host_defaults() -> None:
    assert split_tag("make it night [fail:content_policy]") == ("make it night", "content_policy")
    assert choose("x", {}, "server_error") == ("x", "server_error")
    assert choose("x [fail:none]", {}, "server_error") == ("x", None)
    assert choose("x", {"x-kling-emulator-fail": "rate_limited"}, None) == ("x", "rate_limited")
    with pytest.raises(ValueError, match="typo"):
        choose("x [fail:typo]", {}, None)


def test_every_hosted_provider_is_emulated_and_unknown_hosts_are_refused_by_name() -> None:
    assert check_hosts(["fal", "FAL"]) == ("fal",)
    assert check_hosts(["fal", "segmind", "unifically", "kling", "replicate"]) == \
        ("fal", "segmind", "unifically", "kling", "replicate")
    with pytest.raises(ConfigError, match="not a host"):
        check_hosts(["piapi"])


def test_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text('render = "fast"\nqueue_seconds = 0\n[hosts.fal]\nfail = "content_policy"\nkeys = ["k"]\n')
    settings = load_settings_file(path)
    assert settings.render == "fast" and settings.host("fal").fail == "content_policy" and settings.host("fal").keys == ("k",)
    path.write_text('[hosts.fal]\nfail = "nope"\n')
    with pytest.raises(ConfigError, match=r"hosts\.fal\.fail"):
        load_settings_file(path)


def test_inputs_come_only_from_allowed_places(tmp_path: Path) -> None:
    asyncio.run(_inputs_come_only_from_allowed_places(tmp_path))


async def _inputs_come_only_from_allowed_places(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("no")
    resolver = MediaResolver(Storage(tmp_path / "store", 1 << 20), media_root=root, work=tmp_path / "dl", timeout=2)
    assert (await resolver.fetch(f"file://{root}/a.png", cap=100, name="x")).read_bytes() == b"png"
    assert (await resolver.fetch("data:text/plain;base64,aGk=", cap=100, name="d")).read_bytes() == b"hi"
    for ref in ("https://example.com/a.mp4", "http://10.1.2.3/a.mp4", "http://[fe80::1]/a", "ftp://x/y",
                f"file://{tmp_path}/secret.txt", str(root / ".." / "secret.txt"), "http://localhost:9/none.mp4"):
        with pytest.raises(DownloadRefused):
            await resolver.fetch(ref, cap=100, name="y")
    with pytest.raises(DownloadRefused) as info:
        await resolver.fetch(f"file://{root}/a.png", cap=2, name="z")
    assert info.value.too_large
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("") == "upload.bin"
