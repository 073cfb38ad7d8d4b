"""The webhook receiver (kling_core.webhooks): signed, stale, replayed, forged and unknown callbacks.

Everything runs in the test process: the receiver's ASGI app through httpx's ASGITransport,
each host's status look-up through an httpx.MockTransport, fal's key set through an injected
fetcher (the guarded fetch itself is tested with a fake resolver). No network, no real keys.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.emulator.webhooks import Ed25519Signer
from kling_core.errors import ConfigError, UnsafeMediaError, ValidationError
from kling_core.joblog import JobLog
from kling_core.media.netguard import IPAddress
from kling_core.provider import JobHandle
from kling_core.settings import MediaSettings, WebhookSettings
from kling_core.webhooks import WebhookReceiver
from kling_core.webhooks.app import build_app
from kling_core.webhooks.jwks import guarded_fetcher, parse_jwks
from kling_core.webhooks.signatures import SCHEMES, Signed, hmac_verifies, standard_key

T = TypeVar("T")
NOW = 1_800_000_000.0
FAL_STATUS = "https://queue.fal.run/fal-ai/kling-video/requests/{id}/status"
FAL_RESPONSE = "https://queue.fal.run/fal-ai/kling-video/requests/{id}"
KLING_TASK = "https://api-singapore.klingai.com/v1/videos/omni-video/{id}"
UNIFICALLY_TASK = "https://api.unifically.com/v1/tasks/{id}"
REPLICATE_PREDICTION = "https://api.replicate.com/v1/predictions/{id}"
VIDEO = "https://cdn.example.com/out/{id}.mp4"
# The secret of the Standard Webhooks specification's own example (a known answer, below).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENVIRON = {"FAL_KEY": "fake-fal-key", "KLING_ACCESS_KEY": "fake-access", "KLING_SECRET_KEY": "fake-secret",
           "UNIFICALLY_API_KEY": "fake-unifically-key", "REPLICATE_API_TOKEN": "fake-replicate-token",
           "REPLICATE_WEBHOOK_SECRET": SPEC_SECRET}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Hosts:
    """The hosts' status documents by URL; every GET is recorded."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}
        self.gets: list[str] = []
        self.transport = httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        self.gets.append(url)
        if url not in self.docs:
            return httpx.Response(404, json={"detail": "not found"})
        return httpx.Response(200, json=self.docs[url])

    def kling(self, job_id: str, status: str, key: str) -> None:
        data: dict[str, Any] = {"task_id": job_id, "task_status": status, "task_info": {"external_task_id": key},
                                "created_at": 1763700000000, "updated_at": 1763700095000}
        if status == "succeed":
            data["task_result"] = {"videos": [{"id": "v-1", "url": VIDEO.format(id=job_id), "duration": "5.0"}]}
        self.docs[KLING_TASK.format(id=job_id)] = {"code": 0, "message": "SUCCEED", "request_id": "r-1", "data": data}

    def unifically(self, job_id: str, status: str) -> None:
        data: dict[str, Any] = {"task_id": job_id, "status": status}
        if status == "completed":
            data["output"] = {"video_url": VIDEO.format(id=job_id)}
        self.docs[UNIFICALLY_TASK.format(id=job_id)] = {"code": 200, "success": True, "data": data}

    def fal(self, job_id: str, status: str) -> None:
        self.docs[FAL_STATUS.format(id=job_id)] = {"status": status, "request_id": job_id}
        if status == "COMPLETED":
            self.docs[FAL_RESPONSE.format(id=job_id)] = {"video": {"url": VIDEO.format(id=job_id)}}

    def replicate(self, job_id: str, status: str) -> None:
        doc: dict[str, Any] = {"id": job_id, "status": status}
        if status == "succeeded":
            doc["output"] = VIDEO.format(id=job_id)
        self.docs[REPLICATE_PREDICTION.format(id=job_id)] = doc


class KeySet:
    """fal's JWKS as the injected fetcher serves it; counts fetches."""

    def __init__(self, *signers: Ed25519Signer) -> None:
        self.signers = list(signers)
        self.fetched: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        keys = [k for s in self.signers for k in s.jwks()["keys"]]
        return json.dumps({"keys": keys}).encode()


class World:
    def __init__(self, tmp: Path, **webhook_settings: Any) -> None:
        self.clock = Clock()
        self.hosts = Hosts()
        self.signer = Ed25519Signer()
        self.keyset = KeySet(self.signer)
        self.journal = JobLog(tmp / "state")
        config = config_from_document({"webhooks": {"jwks_min_refresh": 60, **webhook_settings}})
        self.client = AsyncEditClient(config=config, environ=ENVIRON, journal=self.journal,
                                      transport=self.hosts.transport, clock=self.clock)
        self.receiver = WebhookReceiver(self.client, jwks_fetch=self.keyset, clock=self.clock)
        self.app = build_app(self.receiver)

    def seed(self, provider: str, job_id: str, key: str, *, model: str = "kling-o1",
             urls: dict[str, str] | None = None) -> None:
        self.journal.claim(provider=provider, model=model, request={"prompt": key}, request_sha256="0" * 64,
                           client_key=key)
        handle = JobHandle(provider=provider, job_id=job_id, model=model, client_key=key, urls=urls or {},
                           submitted_at=NOW - 60)
        self.journal.transition(key, "submitted", handle=handle)

    def seed_fal(self, job_id: str, key: str) -> None:
        self.seed("fal", job_id, key, urls={"status": FAL_STATUS.format(id=job_id),
                                            "response": FAL_RESPONSE.format(id=job_id)})

    def state(self, key: str) -> str:
        record = self.journal.get(key)
        assert record is not None
        return record.state

    def events(self, key: str) -> list[str]:
        record = self.journal.get(key)
        assert record is not None
        return [e.state for e in record.events]

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://hooks.test") as c:
            return await c.post(path, content=body, headers={"content-type": "application/json", **(headers or {})})

    def send(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            try:
                return await self.post(path, body, headers)
            finally:
                await self.client.aclose()

        return run(go())


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    yield w  # type: ignore[misc]
    w.receiver.close()
    w.journal.close()


def fal_body(job_id: str, status: str = "OK") -> bytes:
    doc: dict[str, Any] = {"request_id": job_id, "gateway_request_id": job_id, "status": status}
    doc["payload"] = {"video": {"url": VIDEO.format(id=job_id)}} if status == "OK" else {"detail": "boom"}
    return json.dumps(doc).encode()


def standard_headers(body: bytes, *, msg_id: str = "msg_1", timestamp: float = NOW,
                     secret: str = SPEC_SECRET) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = str(int(timestamp))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": "v1," + base64.b64encode(mac).decode()}


# -- fal: Ed25519 over fal's header fields, keys from its JWKS ----------------------------------------


def test_fal_valid_webhook_is_confirmed_by_the_host_and_recorded(world: World) -> None:
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "COMPLETED")
    body = fal_body("req-1")
    answer = world.send("/hooks/fal", body, world.signer.fal_headers("req-1", "user-1", body, now=NOW))
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "succeeded" and answer.json()["confirmed"] is True
    assert world.state("key-fal") == "succeeded"
    record = world.journal.get("key-fal")
    assert record is not None and record.result is not None
    assert record.result["video"]["url"] == VIDEO.format(id="req-1")
    # The status look-up and the result fetch, through the provider's own follow step.
    assert world.hosts.gets == [FAL_STATUS.format(id="req-1"), FAL_RESPONSE.format(id="req-1")]
    assert world.keyset.fetched == ["https://rest.alpha.fal.ai/.well-known/jwks.json"]


@pytest.mark.parametrize("tamper", ["body", "reserialized", "signature", "request_id", "timestamp"])
def test_fal_forged_webhook_is_refused_and_changes_nothing(world: World, tamper: str) -> None:
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "COMPLETED")
    body = fal_body("req-1")
    headers = world.signer.fal_headers("req-1", "user-1", body, now=NOW)
    if tamper == "body":
        body = body.replace(b'"OK"', b'"ok"')
    elif tamper == "reserialized":  # the same JSON, other bytes: only the raw bytes are signed
        body = json.dumps(json.loads(body), indent=1).encode()
    elif tamper == "signature":
        sig = bytearray(bytes.fromhex(headers["x-fal-webhook-signature"]))
        sig[0] ^= 1
        headers["x-fal-webhook-signature"] = sig.hex()
    elif tamper == "request_id":
        headers["x-fal-webhook-request-id"] = "req-2"
    else:
        headers["x-fal-webhook-timestamp"] = str(int(NOW) - 1)
    answer = world.send("/hooks/fal", body, headers)
    assert answer.status_code == 401, answer.text
    assert world.state("key-fal") == "submitted" and world.hosts.gets == []


@pytest.mark.parametrize("missing", ["x-fal-webhook-request-id", "x-fal-webhook-user-id",
                                     "x-fal-webhook-timestamp", "x-fal-webhook-signature"])
def test_fal_webhook_without_a_signature_header_is_refused(world: World, missing: str) -> None:
    world.seed_fal("req-1", "key-fal")
    body = fal_body("req-1")
    headers = world.signer.fal_headers("req-1", "user-1", body, now=NOW)
    del headers[missing]
    answer = world.send("/hooks/fal", body, headers)
    assert answer.status_code == 401 and missing in answer.json()["error"]
    assert world.state("key-fal") == "submitted" and world.hosts.gets == []


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_fal_stale_webhook_is_refused(world: World, offset: int) -> None:
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "COMPLETED")
    body = fal_body("req-1")
    answer = world.send("/hooks/fal", body, world.signer.fal_headers("req-1", "user-1", body, now=NOW + offset))
    assert answer.status_code == 401 and "timestamp" in answer.json()["error"]
    assert world.state("key-fal") == "submitted" and world.hosts.gets == []


def test_fal_webhook_at_the_edge_of_the_window_is_accepted(world: World) -> None:
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "IN_PROGRESS")
    body = fal_body("req-1")
    answer = world.send("/hooks/fal", body, world.signer.fal_headers("req-1", "user-1", body, now=NOW - 300))
    assert answer.status_code == 200, answer.text
    assert world.state("key-fal") == "running"


def test_fal_replayed_webhook_is_refused_and_acts_once(world: World) -> None:
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "COMPLETED")
    body = fal_body("req-1")
    headers = world.signer.fal_headers("req-1", "user-1", body, now=NOW)

    async def twice() -> list[httpx.Response]:
        try:
            return [await world.post("/hooks/fal", body, headers), await world.post("/hooks/fal", body, headers)]
        finally:
            await world.client.aclose()

    first, second = run(twice())
    assert first.status_code == 200 and second.status_code == 409
    assert "replay" in second.json()["error"]
    assert len(world.hosts.gets) == 2  # one status look-up and one result fetch, for the first only
    assert world.events("key-fal").count("succeeded") == 1


def test_replays_are_refused_after_a_restart(world: World, tmp_path: Path) -> None:
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "IN_PROGRESS")
    body = fal_body("req-1")
    headers = world.signer.fal_headers("req-1", "user-1", body, now=NOW)
    assert world.send("/hooks/fal", body, headers).status_code == 200
    world.receiver.close()
    again = World.__new__(World)
    again.__dict__.update(world.__dict__)
    again.client = AsyncEditClient(config=world.client.config, environ=ENVIRON, journal=world.journal,
                                   transport=world.hosts.transport, clock=world.clock)
    again.receiver = WebhookReceiver(again.client, jwks_fetch=world.keyset, clock=world.clock)
    again.app = build_app(again.receiver)
    assert again.send("/hooks/fal", body, headers).status_code == 409
    again.receiver.close()
    world.receiver = again.receiver


def test_fal_unknown_key_refreshes_the_key_set_once_then_accepts(world: World) -> None:
    world.seed_fal("req-1", "key-1")
    world.seed_fal("req-2", "key-2")
    world.hosts.fal("req-1", "IN_PROGRESS")
    world.hosts.fal("req-2", "IN_PROGRESS")
    first = fal_body("req-1")
    rotated = Ed25519Signer()
    body = fal_body("req-2")

    async def go() -> list[httpx.Response]:
        try:
            ok = await world.post("/hooks/fal", first, world.signer.fal_headers("req-1", "u", first, now=NOW))
            world.clock.now += 120  # past jwks_min_refresh: a miss may fetch the set again
            world.keyset.signers.append(rotated)  # fal rotates: the new key is published
            headers = rotated.fal_headers("req-2", "u", body, now=world.clock.now)
            return [ok, await world.post("/hooks/fal", body, headers)]
        finally:
            await world.client.aclose()

    ok, after_rotation = run(go())
    assert ok.status_code == 200 and after_rotation.status_code == 200, after_rotation.text
    assert len(world.keyset.fetched) == 2  # the first use, and once for the unknown key
    assert world.state("key-2") == "running"


def test_fal_key_not_in_the_refreshed_set_is_refused_and_refetches_are_rate_limited(world: World) -> None:
    world.seed_fal("req-1", "key-1")
    world.hosts.fal("req-1", "COMPLETED")
    stranger = Ed25519Signer()
    body = fal_body("req-1")

    async def go() -> list[httpx.Response]:
        try:
            out = []
            for n in range(3):  # each a new delivery (a new timestamp), none verifiable
                world.clock.now = NOW + 120 * (n == 2)
                out.append(await world.post("/hooks/fal", body,
                                            stranger.fal_headers("req-1", "u", body, now=world.clock.now)))
            return out
        finally:
            await world.client.aclose()

    answers = run(go())
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert "none of fal's signing keys" in answers[0].json()["error"]
    # First use; no refetch within jwks_min_refresh of it; one more once that passed.
    assert len(world.keyset.fetched) == 2
    assert world.state("key-1") == "submitted" and world.hosts.gets == []


def test_key_set_unreachable_is_a_503_the_sender_retries(world: World) -> None:
    world.seed_fal("req-1", "key-1")

    async def broken(url: str) -> bytes:
        raise UnsafeMediaError("plain http downloads are refused", field="webhooks.fal_jwks_url")

    tries: list[str] = []

    async def counted(url: str) -> bytes:
        tries.append(url)
        return await broken(url)

    world.receiver.jwks._fetch = counted
    body = fal_body("req-1")
    answer = world.send("/hooks/fal", body, world.signer.fal_headers("req-1", "u", body, now=NOW))
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert world.state("key-1") == "submitted"
    # More callbacks (forged or not) within jwks_min_refresh get the same 503 without a new fetch.
    again = world.send("/hooks/fal", body, world.signer.fal_headers("req-1", "v", body, now=NOW))
    assert again.status_code == 503 and len(tries) == 1


def test_fal_webhook_for_an_unknown_job_is_404_and_changes_nothing(world: World) -> None:
    world.seed_fal("req-1", "key-1")
    body = fal_body("req-9")
    answer = world.send("/hooks/fal", body, world.signer.fal_headers("req-9", "u", body, now=NOW))
    assert answer.status_code == 404 and world.hosts.gets == []
    assert world.state("key-1") == "submitted"


# -- Replicate: Standard Webhooks (HMAC-SHA256) ------------------------------------------------------


def test_standard_webhooks_known_answer_from_the_specification() -> None:
    body = b'{"test": 2432232314}'
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    signed = SCHEMES["standard-webhooks"].read(headers, body)
    assert hmac_verifies(standard_key(SPEC_SECRET), signed)
    assert not hmac_verifies(standard_key(SPEC_SECRET), SCHEMES["standard-webhooks"].read(headers, body + b" "))
    # One valid signature among several is enough; other versions are skipped.
    several = {**headers, "webhook-signature": "v1a,AAAA v1,bm90IGl0 " + headers["webhook-signature"]}
    assert hmac_verifies(standard_key(SPEC_SECRET), SCHEMES["standard-webhooks"].read(several, body))


def test_wavespeed_scheme_reads_hex_v3_signatures_keyed_by_the_secret_text() -> None:
    body = b'{"id": "p-1"}'
    secret = "whsec_" + "ab" * 16
    mac = hmac.new(("ab" * 16).encode(), b"m-1.1700000000." + body, hashlib.sha256).hexdigest()
    scheme = SCHEMES["wavespeed-v3"]
    signed = scheme.read({"webhook-id": "m-1", "webhook-timestamp": "1700000000", "webhook-signature": f"v3,{mac}"},
                         body)
    assert hmac_verifies(scheme.secret_key(secret), signed)
    assert not hmac_verifies(scheme.secret_key("whsec_other"), signed)


def test_replicate_valid_webhook_is_confirmed(world: World) -> None:
    world.seed("replicate", "p-1", "key-rep")
    world.hosts.replicate("p-1", "succeeded")
    body = json.dumps({"id": "p-1", "status": "succeeded", "output": VIDEO.format(id="p-1")}).encode()
    answer = world.send("/hooks/replicate", body, standard_headers(body))
    assert answer.status_code == 200, answer.text
    assert world.state("key-rep") == "succeeded"
    assert world.hosts.gets == [REPLICATE_PREDICTION.format(id="p-1")]


@pytest.mark.parametrize("case", ["forged", "wrong-secret", "stale-old", "stale-new", "no-signature"])
def test_replicate_bad_webhooks_are_refused(world: World, case: str) -> None:
    world.seed("replicate", "p-1", "key-rep")
    world.hosts.replicate("p-1", "succeeded")
    body = json.dumps({"id": "p-1", "status": "succeeded", "output": VIDEO.format(id="p-1")}).encode()
    headers = standard_headers(body)
    if case == "forged":
        body = body.replace(b"succeeded", b"succeedex")
    elif case == "wrong-secret":
        headers = standard_headers(body, secret="whsec_" + base64.b64encode(b"another secret of 24 bytes").decode())
    elif case == "stale-old":
        headers = standard_headers(body, timestamp=NOW - 301)
    elif case == "stale-new":
        headers = standard_headers(body, timestamp=NOW + 301)
    else:
        del headers["webhook-signature"]
    answer = world.send("/hooks/replicate", body, headers)
    assert answer.status_code == 401, answer.text
    assert world.state("key-rep") == "submitted" and world.hosts.gets == []


def test_replicate_replayed_webhook_is_refused(world: World) -> None:
    world.seed("replicate", "p-1", "key-rep")
    world.hosts.replicate("p-1", "processing")
    body = json.dumps({"id": "p-1", "status": "processing"}).encode()
    headers = standard_headers(body)

    async def twice() -> list[httpx.Response]:
        try:
            return [await world.post("/hooks/replicate", body, headers),
                    await world.post("/hooks/replicate", body, headers)]
        finally:
            await world.client.aclose()

    first, second = run(twice())
    assert (first.status_code, second.status_code) == (200, 409)
    assert len(world.hosts.gets) == 1


def test_a_failed_look_up_lets_the_hosts_retry_of_the_same_delivery_through(world: World) -> None:
    world.seed("replicate", "p-1", "key-rep")
    body = json.dumps({"id": "p-1", "status": "succeeded", "output": VIDEO.format(id="p-1")}).encode()
    headers = standard_headers(body)  # Replicate keeps the webhook-id when it retries

    async def go() -> list[httpx.Response]:
        try:
            first = await world.post("/hooks/replicate", body, headers)  # the host answers 404 for now
            world.hosts.replicate("p-1", "succeeded")
            return [first, await world.post("/hooks/replicate", body, headers)]
        finally:
            await world.client.aclose()

    first, retry = run(go())
    assert first.status_code == 503 and retry.status_code == 200, retry.text
    assert world.state("key-rep") == "succeeded"


def test_a_delivery_that_broke_the_receiver_is_not_refused_as_a_replay_when_retried(world: World) -> None:
    world.seed("replicate", "p-1", "key-rep")
    world.hosts.replicate("p-1", "processing")
    body = json.dumps({"id": "p-1", "status": "processing"}).encode()
    headers = {k.lower(): v for k, v in standard_headers(body).items()}
    confirm = world.receiver._confirm
    calls = 0

    async def broken_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the job log is locked")
        return await confirm(*args, **kwargs)

    world.receiver._confirm = broken_once  # type: ignore[method-assign]

    async def go() -> Any:
        with pytest.raises(RuntimeError):
            await world.receiver.handle("replicate", body, headers)
        try:
            return await world.receiver.handle("replicate", body, headers)  # the host's retry, same id
        finally:
            await world.client.aclose()

    answer = run(go())
    assert answer.status == 200, answer.body


def test_a_body_nested_past_the_parsers_depth_is_a_400(world: World) -> None:
    world.seed("kling", "task-1", "key-kling")
    body = b"[" * 200_000 + b"]" * 200_000  # unsigned host, well under the size cap
    answer = world.send("/hooks/kling/key-kling", body)
    assert answer.status_code == 400 and "not JSON" in answer.json()["error"]
    assert world.state("key-kling") == "submitted"


def test_replicate_secret_missing_is_a_503_naming_the_setting(world: World, tmp_path: Path) -> None:
    world.seed("replicate", "p-1", "key-rep")
    body = json.dumps({"id": "p-1", "status": "processing"}).encode()
    world.receiver.settings = WebhookSettings(secrets={"replicate": "env:NOT_SET_ANYWHERE"})
    answer = world.send("/hooks/replicate", body, standard_headers(body))
    assert answer.status_code == 503
    message = answer.json()["error"]
    assert "webhooks.secrets.replicate" in message and "NOT_SET_ANYWHERE" in message
    assert SPEC_SECRET not in answer.text and world.state("key-rep") == "submitted"


# -- Kling and Unifically: unsigned, matched by job id and client key, confirmed by a status GET ------


def test_kling_callback_for_a_known_job_is_matched_and_confirmed(world: World) -> None:
    world.seed("kling", "task-1", "key-kling")
    world.hosts.kling("task-1", "succeed", "key-kling")
    body = json.dumps({"task_id": "task-1", "task_status": "succeed", "task_info": {"external_task_id": "key-kling"},
                       "task_result": {"videos": [{"id": "v", "url": VIDEO.format(id="task-1")}]}}).encode()
    answer = world.send("/hooks/kling/key-kling", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["claimed"] == "succeeded" and answer.json()["state"] == "succeeded"
    assert world.state("key-kling") == "succeeded"
    assert world.hosts.gets == [KLING_TASK.format(id="task-1")]


def test_unifically_callback_for_a_known_job_is_confirmed(world: World) -> None:
    world.seed("unifically", "abc123", "key-uni")
    world.hosts.unifically("abc123", "completed")
    body = json.dumps({"task_id": "abc123", "status": "completed",
                       "data": {"video_url": VIDEO.format(id="abc123")}}).encode()
    answer = world.send("/hooks/unifically", body)
    assert answer.status_code == 200, answer.text
    assert world.state("key-uni") == "succeeded"
    record = world.journal.get("key-uni")
    assert record is not None and record.result is not None
    assert record.result["video"]["url"] == VIDEO.format(id="abc123")


@pytest.mark.parametrize("case", ["unknown-job", "other-provider", "wrong-url-key", "wrong-body-key"])
def test_callbacks_for_unknown_jobs_are_404_and_change_nothing(world: World, case: str) -> None:
    world.seed("kling", "task-1", "key-kling")
    world.seed("unifically", "abc123", "key-uni")
    world.hosts.kling("task-1", "succeed", "key-kling")
    world.hosts.unifically("abc123", "completed")
    path, doc = "/hooks/kling", {"task_id": "task-1", "task_status": "succeed",
                                 "task_info": {"external_task_id": "key-kling"}}
    if case == "unknown-job":
        doc["task_id"] = "task-2"
    elif case == "other-provider":
        path, doc = "/hooks/unifically", {"task_id": "task-1", "status": "completed"}
    elif case == "wrong-url-key":
        path = "/hooks/kling/key-uni"
    else:
        doc["task_info"] = {"external_task_id": "key-uni"}
    before = (world.journal.get("key-kling"), world.journal.get("key-uni"))
    answer = world.send(path, json.dumps(doc).encode())
    assert answer.status_code == 404, answer.text
    assert (world.journal.get("key-kling"), world.journal.get("key-uni")) == before
    assert world.hosts.gets == []
    if case == "wrong-url-key":  # the answer does not tell a known job under another key from no job
        unknown = world.send("/hooks/kling/key-uni", json.dumps({**doc, "task_id": "task-2"}).encode())
        assert unknown.json()["error"] == answer.json()["error"].replace("task-1", "task-2")


def test_callback_whose_status_look_up_disagrees_records_only_the_confirmed_state(world: World) -> None:
    world.seed("unifically", "abc123", "key-uni")
    world.hosts.unifically("abc123", "processing")  # the host says: still running
    body = json.dumps({"task_id": "abc123", "status": "completed",
                       "data": {"video_url": "https://evil.example/fake.mp4"}}).encode()
    answer = world.send("/hooks/unifically", body)
    assert answer.status_code == 200
    assert answer.json()["claimed"] == "succeeded" and answer.json()["state"] == "running"
    record = world.journal.get("key-uni")
    assert record is not None and record.state == "running" and record.result is None


def test_failed_job_confirmed_by_the_host_is_recorded_with_the_hosts_reason(world: World) -> None:
    world.seed("unifically", "abc123", "key-uni")
    world.hosts.docs[UNIFICALLY_TASK.format(id="abc123")] = {
        "code": 200, "success": True,
        "data": {"task_id": "abc123", "status": "failed", "error": {"message": "the host's own reason"}}}
    body = json.dumps({"task_id": "abc123", "status": "failed", "error_message": "a callback's claim"}).encode()
    answer = world.send("/hooks/unifically", body)
    assert answer.status_code == 200 and world.state("key-uni") == "failed"
    record = world.journal.get("key-uni")
    assert record is not None and record.error is not None and "claim" not in record.error


def test_finished_jobs_stay_finished_and_are_not_looked_up_again(world: World) -> None:
    world.seed("kling", "task-1", "key-kling")
    world.journal.transition("key-kling", "saved", output="/tmp/out.mp4")
    body = json.dumps({"task_id": "task-1", "task_status": "failed"}).encode()
    answer = world.send("/hooks/kling", body)
    assert answer.status_code == 200 and answer.json()["confirmed"] is False
    assert world.state("key-kling") == "saved" and world.hosts.gets == []


def test_callback_for_a_job_whose_id_is_not_stored_yet_asks_for_a_retry(world: World) -> None:
    world.journal.claim(provider="kling", model="kling-o1", request={"prompt": "x"}, request_sha256="0" * 64,
                        client_key="key-early")
    body = json.dumps({"task_id": "task-7", "task_status": "succeed"}).encode()
    answer = world.send("/hooks/kling/key-early", body)
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert world.state("key-early") == "submitting"


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/hooks/segmind", b"{}", 404),  # takes no callbacks
    ("/hooks/mock", b"{}", 404),
    ("/hooks/nope", b"{}", 404),
    ("/hooks/kling", b"not json", 400),
    ("/hooks/kling", b"[1, 2]", 400),
    ("/hooks/kling", b'{"task_status": "succeed"}', 400),  # names no job
    ("/hooks/kling", b"{" + b" " * (1024 * 1024) + b"}", 413),
])
def test_malformed_callbacks_are_refused(world: World, path: str, body: bytes, status: int) -> None:
    answer = world.send(path, body)
    assert answer.status_code == status, answer.text
    assert world.hosts.gets == []


def test_a_confirmed_callback_wakes_the_clients_wait(world: World) -> None:
    woken: list[tuple[str, str]] = []
    world.client.wake = lambda provider, job_id: woken.append((provider, job_id))  # type: ignore[attr-defined]
    world.seed("kling", "task-1", "key-kling")
    world.hosts.kling("task-1", "processing", "key-kling")
    answer = world.send("/hooks/kling", json.dumps({"task_id": "task-1", "task_status": "processing"}).encode())
    assert answer.status_code == 200 and woken == [("kling", "task-1")]


def test_concurrent_unsigned_callbacks_for_one_job_make_one_look_up_now(world: World) -> None:
    world.seed("kling", "task-1", "key-kling")
    world.hosts.kling("task-1", "processing", "key-kling")
    body = json.dumps({"task_id": "task-1", "task_status": "processing"}).encode()

    async def go() -> list[httpx.Response]:
        try:
            return list(await asyncio.gather(*(world.post("/hooks/kling", body) for _ in range(5))))
        finally:
            await world.client.aclose()

    answers = run(go())
    assert sorted(a.status_code for a in answers) == [200, 202, 202, 202, 202]
    assert len(world.hosts.gets) == 1  # the others wait for one look-up when the interval ends


class PaceClock:
    """A monotonic clock that moves only when the receiver's deferred look-up sleeps, once let."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.let = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self.let.wait()
        self.now += seconds


def paced_world(tmp_path: Path, interval: float = 5) -> tuple[World, PaceClock]:
    world = World(tmp_path, confirm_min_interval=interval)
    pace = PaceClock()
    world.receiver.close()
    world.receiver = WebhookReceiver(world.client, jwks_fetch=world.keyset, clock=world.clock,
                                     pace_clock=pace, sleep=pace.sleep)
    world.app = build_app(world.receiver)
    return world, pace


@pytest.mark.parametrize("provider", ["kling", "unifically"])
def test_unsigned_callbacks_make_one_look_up_per_interval_and_lose_no_completion(
        tmp_path: Path, provider: str) -> None:
    world, pace = paced_world(tmp_path)
    job, key = ("task-1", "key-kling") if provider == "kling" else ("abc123", "key-uni")
    world.seed(provider, job, key)

    def host_says(done: bool) -> None:
        if provider == "kling":
            world.hosts.kling(job, "succeed" if done else "processing", key)
        else:
            world.hosts.unifically(job, "completed" if done else "processing")

    body = json.dumps({"task_id": job, "task_status": "processing", "status": "processing"}).encode()

    async def go() -> list[int]:
        try:
            host_says(done=False)
            codes = [(await world.post(f"/hooks/{provider}", body)).status_code]
            assert world.state(key) == "running" and len(world.hosts.gets) == 1
            host_says(done=True)  # the job ends just after the first callback's look-up
            codes += [(await world.post(f"/hooks/{provider}", body)).status_code for _ in range(20)]
            assert len(world.hosts.gets) == 1 and world.state(key) == "running"  # 20 callbacks, no GET yet
            pace.let.set()  # the interval ends: the one deferred look-up runs
            await asyncio.gather(*world.receiver.pacer._waiting.values())
            return codes
        finally:
            await world.client.aclose()

    codes = run(go())
    assert codes == [200] + [202] * 20
    assert len(world.hosts.gets) == 2 and pace.slept == [5.0]
    assert world.state(key) == "succeeded"  # confirmed by the deferred look-up, not lost
    record = world.journal.get(key)
    assert record is not None and record.result is not None and record.result["video"]["url"] == VIDEO.format(id=job)
    world.receiver.close()
    world.journal.close()


def test_an_unsigned_callback_after_the_interval_is_looked_up_at_once(tmp_path: Path) -> None:
    world, pace = paced_world(tmp_path)
    world.seed("kling", "task-1", "key-kling")
    world.hosts.kling("task-1", "processing", "key-kling")
    body = json.dumps({"task_id": "task-1", "task_status": "processing"}).encode()

    async def go() -> list[int]:
        try:
            first = (await world.post("/hooks/kling", body)).status_code
            pace.now += 5  # a whole interval later
            world.hosts.kling("task-1", "succeed", "key-kling")
            return [first, (await world.post("/hooks/kling", body)).status_code]
        finally:
            await world.client.aclose()

    assert run(go()) == [200, 200]
    assert len(world.hosts.gets) == 2 and pace.slept == [] and world.state("key-kling") == "succeeded"
    world.receiver.close()
    world.journal.close()


def test_signed_callbacks_are_confirmed_at_once_every_time(tmp_path: Path) -> None:
    world, pace = paced_world(tmp_path)
    world.seed_fal("req-1", "key-fal")
    world.hosts.fal("req-1", "IN_PROGRESS")

    async def go() -> list[int]:
        codes = []
        try:
            for i in range(3):
                body = fal_body("req-1", status=f"S{i}")  # three deliveries, three signatures
                headers = world.signer.fal_headers("req-1", "user-1", body, now=NOW + i)
                codes.append((await world.post("/hooks/fal", body, headers)).status_code)
            return codes
        finally:
            await world.client.aclose()

    assert run(go()) == [200, 200, 200]
    assert len(world.hosts.gets) == 3 and pace.slept == []
    world.receiver.close()
    world.journal.close()


def test_index_lists_providers_and_their_checks(world: World) -> None:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://h") as c:
            return await c.get("/hooks")

    listed = run(go()).json()["providers"]
    assert listed["fal"]["signature"] == "fal-ed25519"
    assert listed["replicate"]["signature"] == "standard-webhooks"
    assert "unsigned" in listed["kling"]["signature"] and "segmind" not in listed


# -- the key set: parsed strictly, fetched through the guarded fetch ------------------------------


def test_parse_jwks_keeps_only_ed25519_keys() -> None:
    signer = Ed25519Signer()
    doc = {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, {"kty": "OKP", "crv": "X25519", "x": "AA"},
                    *signer.jwks()["keys"]]}
    assert parse_jwks(json.dumps(doc).encode()) == (signer.public_raw,)
    for bad in (b"nope", b"[]", b'{"keys": []}', json.dumps({"keys": [{"kty": "RSA"}]}).encode()):
        with pytest.raises(ValueError):
            parse_jwks(bad)


def _resolver(ip: str) -> Callable[[str, int], list[IPAddress]]:
    return lambda host, port: [ipaddress.ip_address(ip)]


def test_guarded_jwks_fetch_https_public_address() -> None:
    signer = Ed25519Signer()
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["host"])
        return httpx.Response(200, json=signer.jwks())

    fetch = guarded_fetcher(MediaSettings(), transport=httpx.MockTransport(answer), resolve=_resolver("93.184.216.34"))
    assert parse_jwks(run(fetch("https://keys.example/.well-known/jwks.json"))) == (signer.public_raw,)
    assert seen == ["keys.example"]


@pytest.mark.parametrize(("url", "ip"), [("http://keys.example/jwks.json", "93.184.216.34"),
                                         ("https://keys.example/jwks.json", "127.0.0.1"),
                                         ("https://keys.example/jwks.json", "10.1.2.3")])
def test_guarded_jwks_fetch_refuses_plain_http_and_private_addresses(url: str, ip: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"keys": []}))
    fetch = guarded_fetcher(MediaSettings(), transport=transport, resolve=_resolver(ip))
    with pytest.raises(UnsafeMediaError):
        run(fetch(url))


def test_guarded_jwks_fetch_caps_the_size() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b" " * (65 * 1024)))
    fetch = guarded_fetcher(MediaSettings(), transport=transport, resolve=_resolver("93.184.216.34"))
    with pytest.raises(UnsafeMediaError, match="size limit"):
        run(fetch("https://keys.example/jwks.json"))


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "where"), [
    ({"tolerance": 0}, "tolerance"), ({"tolerance": 7200}, "tolerance"), ({"jwks_max_age": 90000}, "jwks_max_age"),
    ({"port": 70000}, "port"), ({"secrets": {"replicate": "whsec_plain"}}, "secrets"),
    ({"public_url": "ftp://x"}, "public_url"), ({"nope": 1}, "nope"),
    ({"confirm_min_interval": -1}, "confirm_min_interval"), ({"confirm_min_interval": 601}, "confirm_min_interval"),
])
def test_bad_webhook_settings_name_the_field(doc: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as err:
        config_from_document({"webhooks": doc})
    assert where in str(err.value)


def test_receiver_needs_the_job_log() -> None:
    with pytest.raises(ConfigError, match="job log"):
        WebhookReceiver(AsyncEditClient(use_journal=False, environ=ENVIRON))


def test_signed_is_not_built_from_the_body() -> None:
    # A scheme reads headers only; the job id the receiver matches comes from the signed header.
    signer = Ed25519Signer()
    body = fal_body("req-1")
    signed = SCHEMES["fal-ed25519"].read(signer.fal_headers("req-1", "u", body, now=NOW), body)
    assert isinstance(signed, Signed) and signed.job_id == "req-1" and signed.timestamp == int(NOW)


# -- fuzz: whatever arrives, the answer is a 2xx, 4xx or 503, and nothing unconfirmed is recorded ---------

_HEADER_NAMES = st.sampled_from(["x-fal-webhook-request-id", "x-fal-webhook-user-id", "x-fal-webhook-timestamp",
                                 "x-fal-webhook-signature", "webhook-id", "webhook-timestamp", "webhook-signature"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                     max_leaves=10)
_BODIES = st.one_of(
    st.binary(max_size=200),
    _JSON.map(lambda doc: json.dumps(doc).encode()),
    st.fixed_dictionaries({"request_id": st.sampled_from(["req-1", "req-2"]), "task_id": st.sampled_from(["task-1", "x"]),
                           "id": st.just("p-1"), "status": st.text(max_size=10),
                           "task_status": st.sampled_from(["succeed", "failed", "processing", "??"])}
                          ).map(lambda doc: json.dumps(doc).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=st.sampled_from(["fal", "kling", "replicate", "unifically", "segmind", "zzz"]),
       headers=st.dictionaries(_HEADER_NAMES, st.text(max_size=80).filter(lambda t: t.isascii() and "\n" not in t),
                               max_size=7),
       body=_BODIES, key=st.none() | st.sampled_from(["key-kling", "key-fal", "other"]))
def test_fuzzed_callbacks_never_crash_and_record_only_what_the_host_says(
        world: World, provider: str, headers: dict[str, str], body: bytes, key: str | None) -> None:
    if world.journal.get("key-kling") is None:
        world.seed("kling", "task-1", "key-kling")
        world.seed_fal("req-1", "key-fal")
        world.seed("replicate", "p-1", "key-rep")
        world.hosts.kling("task-1", "processing", "key-kling")  # the host's truth: still running
    answer = run(world.receiver.handle(provider, body, headers, client_key=key))
    assert answer.status < 500 or answer.status == 503, answer
    assert SPEC_SECRET not in json.dumps(dict(answer.body))
    # Only the unsigned Kling job can move, and only to what its host says.
    assert world.state("key-kling") in ("submitted", "running")
    assert world.state("key-fal") == "submitted" and world.state("key-rep") == "submitted"


def test_no_secret_in_logs_or_answers(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    world.seed("replicate", "p-1", "key-rep")
    world.hosts.replicate("p-1", "succeeded")
    body = json.dumps({"id": "p-1", "status": "succeeded", "output": VIDEO.format(id="p-1")}).encode()
    good = world.send("/hooks/replicate", body, standard_headers(body))
    bad = World.send(world, "/hooks/replicate", body, standard_headers(body, msg_id="msg_2", secret="whsec_AAAA"))
    assert good.status_code == 200 and bad.status_code == 401
    key_b64 = SPEC_SECRET.removeprefix("whsec_")
    for text in (caplog.text, good.text, bad.text):
        assert key_b64 not in text and "fake-replicate-token" not in text
