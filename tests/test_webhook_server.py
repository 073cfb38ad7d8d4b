"""The receiver on a real loopback socket: serve_webhooks beside a client, against `kling emulate`'s
own signed (fal, Replicate, WaveSpeed) and unsigned (Kling) callbacks; `kling batch --webhooks`;
and `kling webhooks serve|url`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.emulator.webhooks import Ed25519Signer
from kling_core.errors import ConfigError
from kling_core.joblog import JobLog
from kling_core.provider import JobHandle
from kling_core.webhooks import serve_webhooks
from kling_core.webhooks.confirm import DETAIL

HOSTS = ["fal", "kling", "replicate", "wavespeed"]
EMULATOR = pytest.mark.kling_emulator(hosts=HOSTS, render="sample", queue_seconds=0.05, run_seconds=0.05)


def _config(emu: Any) -> Any:
    fal = emu.urls["fal"]
    slow = {"initial": 20.0, "max": 20.0}  # a wait that ends early was woken by a callback
    return config_from_document({
        "media": {"allow_private_urls": True},  # the emulator's key set is on loopback http
        "providers": {
            "fal": {"base_url": fal, "options": {"storage_url": f"{fal}/rest", "cdn_url": f"{fal}/cdn"}, "poll": slow},
            "kling": {"base_url": emu.urls["kling"], "poll": slow},
            "replicate": {"base_url": emu.urls["replicate"], "poll": slow},
            "wavespeed": {"base_url": emu.urls["wavespeed"], "poll": slow},
        },
        "webhooks": {"fal_jwks_url": f"{fal}/rest/.well-known/jwks.json"},
    })


def _replicate_secret(emu: Any) -> str:
    answer = httpx.get(f"{emu.urls['replicate']}/v1/webhooks/default/secret",
                       headers={"authorization": f"Bearer {emu.keys['replicate']}"}, timeout=10)
    answer.raise_for_status()
    secret: str = answer.json()["key"]
    return secret


def _wavespeed_secret(emu: Any) -> str:
    answer = httpx.get(f"{emu.urls['wavespeed']}/api/v3/webhook/secret",
                       headers={"authorization": f"Bearer {emu.keys['wavespeed']}"}, timeout=10)
    answer.raise_for_status()
    secret: str = answer.json()["data"]["secret"]
    return secret


@pytest.mark.ffmpeg  # the emulator's ready-made render is encoded once
@EMULATOR
def test_emulator_callbacks_are_verified_confirmed_and_recorded(kling_emulator: Any, tmp_path: Path) -> None:
    emu = kling_emulator
    environ = {**emu.environ(), "REPLICATE_WEBHOOK_SECRET": _replicate_secret(emu),
               "WAVESPEED_API_KEY": emu.keys["wavespeed"], "WAVESPEED_WEBHOOK_SECRET": _wavespeed_secret(emu)}
    journal = JobLog(tmp_path / "state")
    video = f"{emu.origin}/inputs/clip.mp4"  # the sample render does not fetch its input

    async def go() -> dict[str, Any]:
        client = AsyncEditClient(config=_config(emu), environ=environ, journal=journal)
        out: dict[str, Any] = {}
        try:
            async with serve_webhooks(client, port=0) as running:
                assert running.base_url.startswith("http://127.0.0.1:")
                for provider in HOSTS:
                    request = client.request(video, f"regrade on {provider}", quality="std", provider=provider,
                                             webhook_url=running.url_for(provider))
                    started = await client.start(request, provider=provider)
                    # Nobody polls: only the receiver can move the job on.
                    for _ in range(600):
                        record = journal.get(started.client_key)
                        if record is not None and record.state == "succeeded":
                            break
                        await asyncio.sleep(0.05)
                    result = await asyncio.wait_for(client.wait(started.handle), 60)
                    out[provider] = (started.client_key, result)
        finally:
            await client.aclose()
        return out

    done = asyncio.run(go())
    lines = "\n".join(emu.lines)
    for provider in HOSTS:
        key, result = done[provider]
        record = journal.get(key)
        assert record is not None and record.state == "succeeded", provider
        assert result.video.url.startswith(emu.urls[provider].split("/" + provider)[0])
        # The receiver recorded the outcome it confirmed, before any wait began.
        succeeded = [e for e in record.events if e.state == "succeeded"]
        assert succeeded and succeeded[0].detail == DETAIL, (provider, record.events)
    assert lines.count("webhook delivered to http://127.0.0.1") >= len(HOSTS), lines[-3000:]
    assert "(HTTP 200, attempt 1)" in lines
    journal.close()


def test_serve_webhooks_binds_loopback_only_unless_public(tmp_path: Path) -> None:
    async def go() -> None:
        client = AsyncEditClient(journal=JobLog(tmp_path / "state"))
        try:
            async with serve_webhooks(client, host="0.0.0.0", port=0):
                pass
        finally:
            await client.aclose()

    with pytest.raises(ConfigError, match="loopback"):
        asyncio.run(go())


def test_forged_callback_over_a_real_socket_is_refused(tmp_path: Path) -> None:
    journal = JobLog(tmp_path / "state")
    journal.claim(provider="fal", model="kling-o1", request={"prompt": "x"}, request_sha256="0" * 64, client_key="k")
    journal.transition("k", "submitted", handle=JobHandle(provider="fal", job_id="req-1", model="kling-o1"))
    trusted, forger = Ed25519Signer(), Ed25519Signer()

    async def keys(url: str) -> bytes:
        return json.dumps(trusted.jwks()).encode()

    async def go() -> httpx.Response:
        client = AsyncEditClient(journal=journal, environ={"FAL_KEY": "fake-key"})
        try:
            async with serve_webhooks(client, port=0, jwks_fetch=keys) as running:
                body = json.dumps({"request_id": "req-1", "status": "OK", "payload": {"video": {"url": "x"}}}).encode()
                async with httpx.AsyncClient(trust_env=False) as http:
                    return await http.post(running.url_for("fal"), content=body,
                                           headers=forger.fal_headers("req-1", "u", body))
        finally:
            await client.aclose()

    answer = asyncio.run(go())
    assert answer.status_code == 401
    record = journal.get("k")
    assert record is not None and record.state == "submitted"
    journal.close()


# -- the CLI ---------------------------------------------------------------------------------------


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "KLING_CONFIG_DIR": str(tmp / "user-config"), "KLING_STATE_DIR": str(tmp / "state"),
            "KLING_CACHE_DIR": str(tmp / "cache")}


def _kling(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=tmp, env=_env(tmp), capture_output=True,
                          text=True, timeout=60, check=False)


def test_cli_webhooks_url(tmp_path: Path) -> None:
    (tmp_path / "kling.toml").write_text('[webhooks]\npublic_url = "https://hooks.example.com/base"\n')
    done = _kling(tmp_path, "webhooks", "url", "kling", "--client-key", "my key")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://hooks.example.com/base/hooks/kling/my%20key"
    refused = _kling(tmp_path, "webhooks", "url", "segmind")
    assert refused.returncode == 2 and "takes no callbacks" in refused.stderr and "Traceback" not in refused.stderr


def test_cli_webhooks_serve_refuses_a_public_address_without_the_flag(tmp_path: Path) -> None:
    done = _kling(tmp_path, "webhooks", "serve", "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2 and "loopback" in done.stderr and "Traceback" not in done.stderr


def test_cli_webhooks_serve_answers_on_loopback(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kling_core", "webhooks", "serve", "--port", "0", "--json"],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert set(first["providers"]) >= {"fal", "kling", "unifically", "replicate"}
        url = first["providers"]["kling"]
        answer = None
        for _ in range(100):  # the socket is bound before the line is printed; the app may still start
            try:
                answer = httpx.post(url, json={"task_id": "nope", "task_status": "succeed"}, timeout=5, trust_env=False)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert answer is not None and answer.status_code == 404
        assert "no kling job nope" in answer.json()["error"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err  # interrupted, as the README's exit codes say
    assert "webhook receiver stopped" in err and "Traceback" not in err
    assert err.count("kling callback refused (HTTP 404): no kling job nope in the job log") == 1


@pytest.mark.ffmpeg
@pytest.mark.kling_emulator(hosts=["kling"], render="sample", queue_seconds=0.3, run_seconds=0.3)
def test_batch_with_webhooks_is_woken_by_the_callbacks(kling_emulator: Any, tmp_path: Path) -> None:
    emu = kling_emulator
    # With a receiver, a wait polls only every push_every (here 10 minutes, far past the 120 s
    # this test allows): the batch ends in time only because each job's callback wakes its wait.
    (tmp_path / "kling.toml").write_text('default_provider = "kling"\n' + emu.kling_config(
        "[providers.kling.poll]", "initial = 20", "max = 20", "push_every = 600", "[webhooks]", "port = 0"))
    video = f"{emu.origin}/inputs/clip.mp4"
    (tmp_path / "edits.jsonl").write_text("".join(
        json.dumps({"video": video, "prompt": f"edit {i}", "quality": "std", "output": f"out/{i}.mp4"}) + "\n"
        for i in range(3)))
    done = subprocess.run([sys.executable, "-m", "kling_core", "batch", "edits.jsonl", "--webhooks",
                           "--results", "results.jsonl", "--quiet"], cwd=tmp_path,
                          env={**_env(tmp_path), **emu.environ()}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "webhooks: 3 line(s) report to http://127.0.0.1:" in done.stderr
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["state"] for r in results] == ["saved"] * 3
    lines = "\n".join(emu.lines)
    assert lines.count("webhook delivered to http://127.0.0.1") == 3, lines[-3000:]
