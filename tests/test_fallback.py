"""Fallback hosts against the emulator (issue 12, part 2).

The next host is tried only after a definite refusal (a missing key, a wrong key, no credit);
a submit whose outcome is unknown (the connection dropped after the host received it, or a
5xx answer) stops the list and names the job. The job log keeps every attempt.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.client.fallback import provider_chain
from kling_core.config import config_from_document
from kling_core.errors import InsufficientCreditsError, SubmitUncertainError, ValidationError
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia

pytestmark = [pytest.mark.ffmpeg]
HOSTS = ("fal", "segmind")
PROMPT = "Regrade the scene in the colours of @Image1"
FAL_SUBMIT = "POST /fal/fal-ai/kling-video/"
SEGMIND_SUBMIT = "POST /segmind/v2/kling-o1-video-to-video-edit"


def _upload(emu: Any, *paths: Path) -> list[str]:
    """Inputs as URLs on the emulator (Segmind's upload-asset), which every emulated host can fetch."""
    kinds = {".mp4": "video/mp4", ".png": "image/png"}
    data_urls = [f"data:{kinds[p.suffix]};base64,{base64.b64encode(p.read_bytes()).decode()}" for p in paths]
    answer = httpx.post(f"{emu.urls['segmind']}/upload-asset", json={"data_urls": data_urls},
                        headers={"x-api-key": emu.keys["segmind"]}, timeout=30)
    assert answer.status_code == 200, answer.text
    urls: list[str] = answer.json()["file_urls"]
    return urls


def _config(emu: Any, **extra: Any) -> Any:
    poll = {"initial": 0.05, "max": 0.2}
    fal = emu.urls["fal"]
    doc = {"media": {"allow_private_urls": True},
           "providers": {"fal": {"base_url": fal, "poll": poll,
                                 "options": {"storage_url": f"{fal}/rest", "cdn_url": f"{fal}/cdn"}},
                         "segmind": {"base_url": emu.urls["segmind"], "poll": poll}},
           **extra}
    return config_from_document(doc)


def _client(emu: Any, tmp: Path, environ: dict[str, str], **options: Any) -> EditClient:
    return EditClient(config=_config(emu), environ=environ, journal=JobLog(tmp / "state"), **options)


def _keys(emu: Any, **override: str) -> dict[str, str]:
    env = {"FAL_KEY": emu.keys["fal"], "SEGMIND_API_KEY": emu.keys["segmind"]}
    env.update(override)
    return {k: v for k, v in env.items() if v}


def _submits(emu: Any, marker: str) -> list[str]:
    return [line for line in emu.lines if marker in line]


def test_provider_lists_are_parsed_and_checked() -> None:
    assert provider_chain("fal, segmind,unifically") == ("fal", "segmind", "unifically")
    assert provider_chain(["fal", "segmind"]) == ("fal", "segmind")
    assert provider_chain(None) == () and provider_chain("") == ()
    with pytest.raises(ValidationError, match="provider: 'fal' is listed twice"):
        provider_chain("fal,segmind,fal")
    with pytest.raises(ValidationError, match="empty provider name"):
        provider_chain("fal,,segmind")


@pytest.mark.kling_emulator(hosts=HOSTS, fail={"fal": "insufficient_credits"})
def test_a_definite_refusal_falls_through_to_the_next_host(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                           tmp_path: Path) -> None:
    video, image = _upload(kling_emulator, sample.video, sample.images[0])
    with _client(kling_emulator, tmp_path, _keys(kling_emulator)) as client:
        request = client.request(video, PROMPT, images=[image])
        result = client.edit(request, provider="fal,segmind", output=tmp_path / "out.mp4")
        assert result.provider == "segmind"
        served = client.jobs(provider="segmind")[0]
        refused = client.jobs(provider="fal")[0]
    # fal answered its one submit with 403 (its out-of-credit answer, no job); segmind got one and served it.
    fal_posts = _submits(kling_emulator, FAL_SUBMIT)
    assert len(fal_posts) == 1 and '" 403 ' in fal_posts[0]
    assert len(_submits(kling_emulator, SEGMIND_SUBMIT)) == 1
    assert [(a["provider"], a["outcome"]) for a in served.attempts] == [("fal", "refused"), ("segmind", "served")]
    assert "exhausted balance" in served.attempts[0]["reason"].lower()
    assert served.attempts[0]["client_key"] == refused.client_key and refused.state == "failed"
    assert refused.job_id is None  # the refusal made no job
    assert served.estimate is not None and served.estimate["usd"] == pytest.approx(1.30)
    # Segmind's x-remaining-credits (the account's balance after the charge) is kept as reported.
    assert served.cost is not None and isinstance(served.cost["remaining_credits"], float)

    # Running it again picks up nothing on fal and does not pay segmind twice: the result was
    # saved, so it is a new take; but an unfinished job would be picked up (see the next test).
    assert (tmp_path / "out.mp4").stat().st_size > 0


@pytest.mark.kling_emulator(hosts=HOSTS)
def test_a_missing_key_and_a_wrong_key_are_passed_over(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                       tmp_path: Path) -> None:
    (video,) = _upload(kling_emulator, sample.video)
    environ = _keys(kling_emulator, FAL_KEY="emulator-fal-wrong-fake-key")  # 401 from fal; no Unifically key
    config = _config(kling_emulator, default_provider="unifically", fallback_providers=["fal", "segmind"])
    with EditClient(config=config, environ=environ, journal=JobLog(tmp_path / "state")) as client:
        handle = client.submit(client.request(video, "Make it night"))
        assert handle.provider == "segmind"
        record = client.jobs(provider="segmind")[0]
    assert [(a["provider"], a["outcome"]) for a in record.attempts] == [
        ("unifically", "skipped"), ("fal", "refused"), ("segmind", "served")]
    assert "UNIFICALLY_API_KEY" in record.attempts[0]["reason"]
    assert '" 401 ' in _submits(kling_emulator, FAL_SUBMIT)[0]


class DropAfterSubmit(httpx.AsyncBaseTransport):
    """Delivers every request; for a submit to ``path`` the host gets it, then the connection drops."""

    def __init__(self, marker: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.marker = marker
        self.dropped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and self.marker in request.url.path:
            await response.aread()
            await response.aclose()
            self.dropped += 1
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.kling_emulator(hosts=HOSTS)
def test_an_uncertain_submit_stops_the_list_and_names_the_job(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                              tmp_path: Path) -> None:
    (video,) = _upload(kling_emulator, sample.video)
    transport = DropAfterSubmit("/fal/fal-ai/kling-video/")
    with _client(kling_emulator, tmp_path, _keys(kling_emulator), transport=transport) as client:
        request = client.request(video, "Make it night")
        with pytest.raises(SubmitUncertainError) as info:
            client.submit(request, provider=["fal", "segmind"])
        record = client.jobs(provider="fal")[0]
        # Running it again picks the uncertain fal job up (or refuses); segmind is still never asked.
        with pytest.raises(SubmitUncertainError):
            client.submit(request, provider=["fal", "segmind"])
    message = str(info.value)
    assert transport.dropped == 1 and len(_submits(kling_emulator, FAL_SUBMIT)) == 1
    assert _submits(kling_emulator, SEGMIND_SUBMIT) == []  # never tried: the fal job may exist
    assert record.state == "uncertain" and record.client_key in message
    assert "fallback stopped at fal" in message and "segmind was not tried" in message
    assert "kling jobs" in message  # how to settle it
    assert [(a["provider"], a["outcome"]) for a in record.attempts] == [("fal", "stopped")]


@pytest.mark.kling_emulator(hosts=HOSTS, fail={"fal": "server_error"})
def test_a_5xx_at_submit_stops_the_list(kling_emulator: Any, sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    (video,) = _upload(kling_emulator, sample.video)
    with _client(kling_emulator, tmp_path, _keys(kling_emulator)) as client:
        with pytest.raises(Exception) as info:
            client.submit(client.request(video, "Make it night"), provider="fal,segmind")
        record = client.jobs(provider="fal")[0]
    assert "NOT resubmitted" in str(info.value) and "segmind was not tried" in str(info.value)
    assert record.state == "uncertain"
    assert _submits(kling_emulator, SEGMIND_SUBMIT) == []


@pytest.mark.kling_emulator(hosts=HOSTS, fail={"fal": "insufficient_credits", "segmind": "insufficient_credits"})
def test_when_every_host_refuses_the_error_lists_each(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                      tmp_path: Path) -> None:
    (video,) = _upload(kling_emulator, sample.video)
    with _client(kling_emulator, tmp_path, _keys(kling_emulator)) as client, \
            pytest.raises(InsufficientCreditsError) as info:
        client.submit(client.request(video, "Make it night"), provider="fal,segmind")
    assert "no host took the job (2 tried, none created a job)" in str(info.value)
    assert "  fal: refused:" in str(info.value) and "  segmind: refused:" in str(info.value)


def _kling(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "KLING_CONFIG_DIR": str(cwd / "user-config"),
                "KLING_STATE_DIR": str(cwd / "state"), "KLING_CACHE_DIR": str(cwd / "cache")}
    full_env.pop("KLING_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=180, check=False)


@pytest.mark.kling_emulator(hosts=HOSTS, fail={"fal": "insufficient_credits"})
def test_cli_provider_list_and_jobs_show_the_attempts(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                      tmp_path: Path) -> None:
    video, image = _upload(kling_emulator, sample.video, sample.images[0])
    (tmp_path / "kling.toml").write_text(kling_emulator.kling_config())
    env = kling_emulator.environ()
    done = _kling(["edit", video, "-p", PROMPT, "--image", image, "--provider", "fal,segmind", "-o", "out.mp4",
                   "--json", "-q"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"] == "segmind"
    done = _kling(["edit", video, "-p", PROMPT, "--image", image, "--provider", "fal,segmind", "-o", "out2.mp4",
                   "--new"], tmp_path, env)  # with progress lines: the host passed over is said
    assert done.returncode == 0, done.stderr
    assert "fal: refused (fal: forbidden" in done.stderr and "tried the next host" in done.stderr
    listed = _kling(["jobs"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert "COST" in header
    saved = next(r for r in rows if " saved " in r)
    assert "~$1.30" in saved  # Segmind's per-run price, estimated before sending
    assert rows[-1] == "total: $2.60 over 2 finished jobs listed; 2 by estimate"
    key = json.loads(_kling(["jobs", "--json", "--state", "saved"], tmp_path, env).stdout)[0]["client_key"]
    shown = _kling(["jobs", "show", key], tmp_path, env)
    assert shown.returncode == 0, shown.stderr
    assert "attempts:" in shown.stdout
    assert "  fal: refused (" in shown.stdout and "  segmind: served" in shown.stdout


@pytest.mark.kling_emulator(hosts=HOSTS, fail={"fal": "insufficient_credits"})
def test_running_it_again_picks_up_the_job_the_list_made(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                         tmp_path: Path) -> None:
    (video,) = _upload(kling_emulator, sample.video)
    with _client(kling_emulator, tmp_path, _keys(kling_emulator)) as client:
        request = client.request(video, "Make it night")
        first = client.start(request, provider="fal,segmind")
        again = client.start(request, provider="fal,segmind")
        assert client.pending(request, provider="segmind") is not None
    assert first.handle.provider == "segmind" and not first.resumed
    assert again.resumed and again.handle.job_id == first.handle.job_id
    # One refused POST to fal and one accepted POST to segmind: the second run asked neither again.
    assert len(_submits(kling_emulator, FAL_SUBMIT)) == 1
    assert len(_submits(kling_emulator, SEGMIND_SUBMIT)) == 1
