"""Recording scrubs every secret it meets, and the secrets scan fails on any left (issue 10 item 8).

Signed-URL query values (S3, GCS, CloudFront, Azure SAS, tokens in the query) in any URL of
requests and responses, fal storage tokens, Bearer/Key tokens and JWTs are replaced with
``<SECRET>``; the scan names the file and JSON path of whatever is left, never the value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kling_core_plugins.fal import FalProvider

from kling_core.contract.models import EditRequest
from kling_core.testing.cassettes import load_cassette
from kling_core.testing.record import record_scenario, scrub_json, scrub_text, write_cassette
from kling_core.testing.replay import replay
from kling_core.testing.secrets import (
    assert_no_secrets,
    is_auth_field,
    looks_random,
    scan_document,
    scan_file,
    signed_url_params,
)

# Fake but real-looking values: each must be gone from a recording.
AMZ_SIG = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
AMZ_CRED = "AKIAIOSFODNN7EXAMPLE/20261120/us-east-1/s3/aws4_request"
AMZ_TOKEN = "FwoGZXIvYXdzEJr7kq9Z3xQ8mW2nLpR4tV6yB1cD5eF7gH9jK0lM"
CF_SIG = "Nql641NHEUkUaXQHZINK1FZ~SYeUSoBJMxjdgqrzIdzV2gyEXPDNv0pYdWJkflDKJ3xIu7lbwRpSkG98NBlgPi4ZJpRRnVX4kXAJK6tdNx6FucDB7OVqzcxkxHsGFd8VCG1BkC-Afh9~lOCMIYHIaiOB6~5jt9w2EOwi6sIIqrg_"
CF_PAIR = "K2JCJMDEHXQW5F"
GCS_SIG = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg%3D%3D"
STORAGE_TOKEN = "fst_9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"
FAL_KEY = "3c5e1f0a-7b9d-4e2a-8c6f-1d3b5a7e9c0f:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
HOOK_SIG = "hk7Qz2Lw9Xv4Rt6Yp1Ns8Mb3Jc5Fd0Ga"
ALL = [AMZ_SIG, AMZ_CRED.split("/")[0], AMZ_TOKEN, CF_SIG, CF_PAIR, GCS_SIG, STORAGE_TOKEN, FAL_KEY,
       FAL_KEY.split(":")[1], HOOK_SIG]

S3_URL = ("https://bucket.s3.amazonaws.com/in/clip.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          f"&X-Amz-Credential={AMZ_CRED.replace('/', '%2F')}&X-Amz-Date=20261120T101500Z&X-Amz-Expires=3600"
          f"&X-Amz-SignedHeaders=host&X-Amz-Security-Token={AMZ_TOKEN}&X-Amz-Signature={AMZ_SIG}")
CF_URL = f"https://d111111abcdef8.cloudfront.net/out.mp4?Expires=1767225600&Signature={CF_SIG}&Key-Pair-Id={CF_PAIR}"
GCS_URL = ("https://storage.googleapis.com/bucket/out.mp4?GoogleAccessId=svc%40proj.iam.gserviceaccount.com"
           f"&Expires=1767225600&Signature={GCS_SIG}")


# --- signed URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret_names", "kept"),
    [
        (S3_URL, {"X-Amz-Credential", "X-Amz-Security-Token", "X-Amz-Signature"},
         ["X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Date=20261120T101500Z", "X-Amz-Expires=3600",
          "X-Amz-SignedHeaders=host"]),
        (CF_URL, {"Expires", "Signature", "Key-Pair-Id"}, []),
        (GCS_URL, {"GoogleAccessId", "Expires", "Signature"}, []),
        ("https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=svc%2F20261120"
         "&X-Goog-Date=20261120T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=abc123def",
         {"X-Goog-Credential", "X-Goog-Signature"}, ["X-Goog-Date=20261120T000000Z", "X-Goog-Expires=900"]),
        ("https://d1.cloudfront.net/o.mp4?Policy=eyJTdGF0ZW1lbnQiOlt7&Signature=abc&Key-Pair-Id=K1",
         {"Policy", "Signature", "Key-Pair-Id"}, []),
        ("https://acct.blob.core.windows.net/c/o.mp4?sv=2022-11-02&se=2026-11-21T00%3A00%3A00Z&sr=b&sp=r&sig=AbC%2Bd",
         {"sig"}, ["sv=2022-11-02", "sr=b", "sp=r"]),
        ("https://cdn.example.com/o.mp4?token=abc123&v=2", {"token"}, ["v=2"]),
        ("https://cdn.example.com/o.mp4?access_token=abc123#t=5", {"access_token"}, ["#t=5"]),
        ("https://cdn.example.com/o.mp4?Expires=1767225600&size=2", set(), ["Expires=1767225600", "size=2"]),
        ("https://queue.fal.run/x/edit?fal_webhook=https%3A%2F%2Fhooks.example.com%2Ffal%3Fjob%3D42%26sig%3Dh1s3c",
         {"sig"}, ["job%3D42"]),
    ],
)
def test_signed_url_query_values_are_found_and_replaced(url: str, secret_names: set[str], kept: list[str]) -> None:
    assert {p.name for p in signed_url_params(url)} == secret_names
    text = f"uploaded to {url} (expires soon)"
    scrubbed = scrub_text(text, [])
    for name in secret_names:
        assert f"{name}=<SECRET>" in scrubbed or f"{name}%3D<SECRET>" in scrubbed, (name, scrubbed)
    for part in kept:
        assert part in scrubbed
    assert scrubbed.startswith("uploaded to https://") and scrubbed.endswith(" (expires soon)")
    assert scrub_text(scrubbed, []) == scrubbed, "scrubbing twice changes nothing"
    assert scan_document({"url": scrubbed}) == []
    if secret_names:
        findings = scan_document({"url": url})
        assert any(f.startswith("url: holds a signed-URL query value") for f in findings), findings


def test_a_recorded_signed_url_replays_against_the_provider_sending_the_scrubbed_one() -> None:
    """What the provider sends in replay (the scrubbed URL, percent-encoded by httpx) matches the
    recorded one: the query compares decoded values."""
    from kling_core.testing.cassettes import RecordedRequest
    from kling_core.testing.matching import request_problems

    recorded_url = scrub_text(S3_URL, [])
    sent = httpx.Request("GET", recorded_url)
    rec = RecordedRequest(method="GET", url=recorded_url, headers={})  # type: ignore[call-arg]
    assert request_problems(rec, sent) == []


# --- fields, tokens, JWTs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "auth"),
    [("token", True), ("access_token", True), ("X-Amz-Security-Token", True), ("api_key", True),
     ("apiKey", True), ("client_secret", True), ("password", True), ("authorization", True),
     ("token_type", False), ("expires_at", False), ("client_key", False), ("external_task_id", False),
     ("request_id", False), ("tokens_used", False)],
)
def test_auth_like_fields(name: str, auth: bool) -> None:
    assert is_auth_field(name) is auth


@pytest.mark.parametrize(
    ("value", "random"),
    [(STORAGE_TOKEN, True), (AMZ_SIG, True), ("Bearer " + STORAGE_TOKEN, True), ("4f8a2c9e1b7d6a3f", True),
     ("80e732af-660e-45cd-bd63-580e4f2a94cc", True), ("AbCdEfGhIjKlMnOpQrStUv", True),
     ("storage-token-example-0001", False), ("tok-0001", False), ("abcdefghijklmnopqrst", False),
     ("a sky full of keys and tokens", False), ("<SECRET>", False)],
)
def test_looks_random(value: str, random: bool) -> None:
    assert looks_random(value) is random


def test_scrub_json_replaces_auth_fields_and_every_echo_of_them() -> None:
    jwt_value = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhay0xMjMifQ.c2lnbmF0dXJlMTIzNDU2Nzg5"
    secrets: list[str] = []
    storage = scrub_json({"token": STORAGE_TOKEN, "token_type": "Bearer", "base_url": "https://v3.fal.media",
                          "expires_at": "2026-09-01T11:00:00Z"}, secrets)
    assert storage == {"token": "<SECRET>", "token_type": "Bearer", "base_url": "https://v3.fal.media",
                       "expires_at": "2026-09-01T11:00:00Z"}
    assert STORAGE_TOKEN in secrets, "learnt: an echo later in the recording is scrubbed too"
    later = scrub_json({"detail": f"upload refused for {STORAGE_TOKEN}", "auth": {"api_key": "short"},
                        "echo": f"Authorization: Bearer {jwt_value}", "k": "Key fake3c5e1f0a7b9d4e2a8c6f1d",
                        "n": 3, "ok": True, "none": None}, secrets)
    assert later == {"detail": "upload refused for <SECRET>", "auth": {"api_key": "<SECRET>"},
                     "echo": "Authorization: Bearer <SECRET>", "k": "Key <SECRET>", "n": 3, "ok": True, "none": None}
    assert scan_document(later) == [] and scan_document(storage) == []


def test_ordinary_text_is_left_alone() -> None:
    doc = {"prompt": "Key features: a bearer of good news, token of thanks",
           "message": "Authorization has expired", "logs": ["Generating video"],
           "video": {"url": "https://v3b.fal.media/files/b/rabbit/ku8_Wdpf-oTbGRq4lB5DU_output.mp4"},
           "status_url": "https://queue.fal.run/fal-ai/kling-video/requests/80e/status?logs=1"}
    assert scrub_json(doc, []) == doc
    assert scan_document(doc) == []


# --- the scan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "path", "what"),
    [
        ({"steps": [{"response": {"json": {"url": S3_URL}}}]}, "steps[0].response.json.url",
         "signed-URL query value (X-Amz-Signature="),
        ({"steps": [{"request": {"url": CF_URL}}]}, "steps[0].request.url", "signed-URL query value (Key-Pair-Id="),
        ({"r": {"json": {"token": STORAGE_TOKEN}}}, "r.json.token", "auth-like field holds a long random token"),
        ({"r": {"headers": {"x-amz-security-token": AMZ_TOKEN}}}, "r.headers.x-amz-security-token",
         "auth-like field holds a long random token"),
        ({"r": {"text": f"retry with Bearer {STORAGE_TOKEN}"}}, "r.text", "'Bearer <token>' credential"),
        ({"r": ["eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhay0xMjMifQ.c2lnbmF0dXJlMTIzNDU2Nzg5"]}, "r[0]", "a JWT"),
        ({"r": {"note": "id AKIAIOSFODNN7EXAMPLE"}}, "r.note", "an AWS access key id"),
    ],
)
def test_the_scan_names_the_file_and_path_never_the_value(tmp_path: Path, doc: Any, path: str, what: str) -> None:
    file = tmp_path / "leaky.json"
    file.write_text(json.dumps(doc), "utf-8")
    findings = scan_file(file)
    assert any(f.startswith(f"{file}: {path}: ") and what in f for f in findings), findings
    with pytest.raises(AssertionError) as exc:
        assert_no_secrets([file])
    text = str(exc.value)
    for secret in (AMZ_SIG, AMZ_TOKEN, CF_SIG, CF_PAIR, STORAGE_TOKEN, "c2lnbmF0dXJlMTIzNDU2Nzg5", "IOSFODNN7"):
        assert secret not in text


def test_the_scan_accepts_scrubbed_and_placeholder_values() -> None:
    doc = {
        "url": scrub_text(S3_URL, []),
        "encoded": "https://queue.fal.run/x?fal_webhook=https%3A%2F%2Fh.example%2Ff%3Fsig%3D%3CSECRET%3E",
        "json": {"token": "storage-token-example-0001", "access_token": "<SECRET>", "token_type": "Bearer",
                 "plain": "https://cdn.example.com/o.mp4?Expires=1767225600"},
        "headers": {"authorization": "Bearer <SECRET>"},
    }
    assert scan_document(doc) == []


@given(
    secret=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~", min_size=12, max_size=60)
    .filter(lambda s: any(c.isdigit() for c in s)),
    name=st.sampled_from(["X-Amz-Signature", "X-Amz-Security-Token", "Signature", "sig", "token", "access_token",
                          "GoogleAccessId", "X-Goog-Signature", "Policy", "Key-Pair-Id"]),
    before=st.sampled_from(["", "a=1&", "X-Amz-Date=20261120T000000Z&"]),
    after=st.sampled_from(["", "&b=2", "#frag"]),
    where=st.sampled_from(["{url}", "see {url} now", "{url}\n{url}"]),
)
def test_no_signed_value_survives_a_recording(secret: str, name: str, before: str, after: str, where: str) -> None:
    url = f"https://host.example.com/p/o.mp4?{before}{name}={secret}{after}"
    doc = {"json": {"u": where.format(url=url)}, "list": [url]}
    scrubbed = scrub_json(doc, [])
    assert secret not in json.dumps(scrubbed)
    assert scan_document(scrubbed) == []
    assert scan_document(doc) != []


# --- end to end: recording fal with a storage upload and signed URLs ----------------------

JOB = "80e732af-660e-45cd-bd63-580e4f2a94cc"
QUEUE = "https://queue.fal.run/fal-ai/kling-video"
UPLOADED = (f"https://v3.fal.media/files/b/koala/clip.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={AMZ_CRED.replace('/', '%2F')}&X-Amz-Expires=3600&X-Amz-Signature={AMZ_SIG}")


class FakeFal:
    """fal's storage and queue as a live host would answer, leaking tokens the way hosts do."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        url = str(request.url)
        self.seen.append(f"{request.method} {url}")
        auth = request.headers.get("authorization", "")
        if url.startswith("https://rest.fal.ai/storage/auth/token"):
            assert auth == f"Key {FAL_KEY}"
            return httpx.Response(200, json={"token": STORAGE_TOKEN, "token_type": "Bearer",
                                             "base_url": "https://v3.fal.media", "expires_at": "2026-11-20T11:00:00Z"})
        if url == "https://v3.fal.media/files/upload":
            assert auth == f"Bearer {STORAGE_TOKEN}"
            return httpx.Response(200, json={"access_url": UPLOADED, "debug": f"authorized by Bearer {STORAGE_TOKEN}"})
        if request.method == "POST" and url.startswith(f"{QUEUE}/o1/video-to-video/edit"):
            assert auth == f"Key {FAL_KEY}"
            assert json.loads(request.content)["video_url"] == UPLOADED
            return httpx.Response(200, json={
                "request_id": JOB, "status_url": f"{QUEUE}/requests/{JOB}/status",
                "response_url": f"{QUEUE}/requests/{JOB}", "cancel_url": f"{QUEUE}/requests/{JOB}/cancel",
            })
        if url == f"{QUEUE}/requests/{JOB}/status?logs=1":
            return httpx.Response(200, json={"status": "COMPLETED", "logs": [{"message": f"fetched {S3_URL}"}],
                                             "request_id": JOB, "response_url": f"{QUEUE}/requests/{JOB}"})
        if url == f"{QUEUE}/requests/{JOB}":
            return httpx.Response(200, json={
                "video": {"url": CF_URL, "content_type": "video/mp4", "file_name": "output.mp4", "file_size": 1024},
                "mirror": GCS_URL,
            })
        return httpx.Response(404, json={"detail": f"no route {url}"})


def test_a_fal_recording_with_storage_upload_and_signed_urls_holds_no_secret(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 2048)
    host = FakeFal()

    async def no_wait(seconds: float) -> None:
        return None

    doc = asyncio.run(record_scenario(
        FalProvider, scenario="recorded-upload",
        request=EditRequest(prompt="Make it snow", video=str(clip), webhook_url=f"https://hooks.example.com/f?job=42&sig={HOOK_SIG}"),
        environ={"FAL_KEY": FAL_KEY}, inner=httpx.MockTransport(host), sleep=no_wait, today=dt.date(2026, 11, 20),
    ))
    assert [s.split("?")[0] for s in host.seen] == [
        "POST https://rest.fal.ai/storage/auth/token", "POST https://v3.fal.media/files/upload",
        f"POST {QUEUE}/o1/video-to-video/edit", f"GET {QUEUE}/requests/{JOB}/status", f"GET {QUEUE}/requests/{JOB}",
    ]
    path = write_cassette(doc, tmp_path / "recorded-upload.json", secrets=[FAL_KEY])
    text = path.read_text("utf-8")
    for secret in ALL:
        assert secret not in text, secret
    assert scan_file(path) == []
    submit = doc["steps"][0]["interactions"]
    token, upload, queue = submit
    assert token["response"]["json"]["token"] == "<SECRET>"
    assert token["response"]["json"]["token_type"] == "Bearer"
    assert upload["request"]["headers"]["authorization"] == "Bearer <SECRET>"
    assert upload["response"]["json"]["debug"] == "authorized by Bearer <SECRET>"
    scrubbed_upload = upload["response"]["json"]["access_url"]
    assert "X-Amz-Signature=<SECRET>" in scrubbed_upload and "X-Amz-Credential=<SECRET>" in scrubbed_upload
    assert "X-Amz-Expires=3600" in scrubbed_upload
    assert queue["request"]["json"]["video_url"] == scrubbed_upload, "the same URL, scrubbed the same way"
    assert queue["request"]["url"].endswith("?fal_webhook=https%3A%2F%2Fhooks.example.com%2Ff%3Fjob%3D42%26sig%3D<SECRET>")
    assert doc["request"]["webhook_url"] == "https://hooks.example.com/f?job=42&sig=<SECRET>"
    result = doc["steps"][-1]["interactions"][-1]["response"]["json"]
    assert result["video"]["url"] == ("https://d111111abcdef8.cloudfront.net/out.mp4?Expires=<SECRET>"
                                      "&Signature=<SECRET>&Key-Pair-Id=<SECRET>")
    assert "GoogleAccessId=<SECRET>" in result["mirror"]
    # The scrubbed recording still replays offline against the plugin.
    cassette = load_cassette(path)
    cassette = attrs.evolve(cassette, request=attrs.evolve(cassette.request, video=str(clip)))
    outcome = replay(FalProvider, cassette, work_dir=tmp_path)
    assert outcome.failures == []


def test_a_signed_input_url_is_scrubbed_alike_in_the_request_and_the_wire(tmp_path: Path) -> None:
    """The user's own signed video URL: the cassette's request and the recorded submit body hold
    the same scrubbed URL, so the cassette replays (the provider sends what the cassette holds)."""
    kling_example = pytest.importorskip("kling_example", reason="pip install -e examples/kling-example-provider")
    key = "evk_live_4f8a2c9e1b7d6a3f"

    def host(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": "ed_1", "status": "queued"})
        return httpx.Response(200, json={"id": "ed_1", "status": "succeeded",
                                         "output": {"url": CF_URL, "size_bytes": 10}})

    async def no_wait(seconds: float) -> None:
        return None

    doc = asyncio.run(record_scenario(
        kling_example.ExampleProvider, scenario="signed-input",
        request=EditRequest(prompt="Make it snow", video=S3_URL),
        environ={"EXAMPLE_VIDEO_API_KEY": key}, inner=httpx.MockTransport(host), sleep=no_wait,
        today=dt.date(2026, 11, 20),
    ))
    path = write_cassette(doc, tmp_path / "signed-input.json", secrets=[key])
    text = path.read_text("utf-8")
    for secret in (AMZ_SIG, AMZ_TOKEN, CF_SIG, CF_PAIR, key):
        assert secret not in text
    assert [s["op"] for s in doc["steps"]] == ["submit", "status"]
    assert doc["request"]["video"] == scrub_text(S3_URL, [])
    assert doc["request"]["video"] in json.dumps(doc["steps"][0]["interactions"][0]["request"])
    assert replay(kling_example.ExampleProvider, load_cassette(path)).failures == []
