"""The mock behaves like a hosted job: states, resumption, cancellation, scripted failures,
and refusals of media a host would refuse, each with the canonical error type."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from kling_core_plugins.mock import MockProvider, render
from kling_core_plugins.mock.provider import output_path
from media_fixtures import LoopbackServer, long_4k_clip, loopback, sample, short_clip, write_playlist
from mock_helpers import follow, provider, request, run_job, states

from kling_core.client import AsyncEditClient
from kling_core.config import KlingConfig
from kling_core.contract.capabilities import VideoLimits
from kling_core.contract.status import Cancelled, Failed, Queued, Running, Succeeded
from kling_core.errors import (
    ConfigError,
    ContentPolicyError,
    InsufficientCreditsError,
    JobTimeoutError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    UnsafeMediaError,
    ValidationError,
)
from kling_core.media import FfmpegInput, SampleMedia
from kling_core.plugins import PluginHost
from kling_core.settings import MediaSettings, PollSettings, ProviderSettings

__all__ = ["long_4k_clip", "loopback", "sample", "short_clip"]


def _jobs(work: Path) -> list[str]:
    d = work / "jobs"
    return sorted(os.listdir(d)) if d.exists() else []


# -- registration and capability data ---------------------------------------------------


def test_registered_through_the_entry_point() -> None:
    host = PluginHost(environ={})
    assert host.provider_class("mock") is MockProvider


def test_capabilities_are_the_hosted_models() -> None:
    caps = MockProvider.capabilities
    assert caps.model_names == ("kling-o1", "kling-o3")
    for m in caps.models:
        assert m.video == VideoLimits()
        assert m.max_references == 4 and m.element_reference_images == (1, 3)
    assert caps.can_cancel and caps.accepts_local_files and not caps.accepts_webhook
    assert MockProvider.credentials == ()


# -- job life cycle ------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_status_goes_queued_running_succeeded(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path, {"latency": 0.3})
    handle, seen = run_job(p, request(sample, images=[], elements=[], prompt="plain grade"))
    assert states(seen) == ["queued", "running", "succeeded"]
    progress = [s.progress for s in seen if isinstance(s, Running)]
    assert all(x is not None and 0 <= x <= 100 for x in progress)
    assert progress == sorted(progress)
    assert isinstance(seen[0], Queued) and seen[0].job_id == handle.job_id
    final = seen[-1]
    assert isinstance(final, Succeeded) and output_path(final.result).is_file()


_STATUS_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from kling_core.provider import ProviderContext
from kling_core_plugins.mock import MockProvider
from kling_core.serialization import unstructure
p = MockProvider(ProviderContext(name="mock", work_dir=Path(sys.argv[1])))
status = asyncio.run(p.status(p.resume(sys.argv[2])))
print(json.dumps(unstructure(status)))
"""

_SUBMIT_AND_EXIT = """
import asyncio, sys
from pathlib import Path
from kling_core.contract.models import EditRequest
from kling_core.provider import ProviderContext
from kling_core.settings import ProviderSettings
from kling_core_plugins.mock import MockProvider
p = MockProvider(ProviderContext(name="mock", work_dir=Path(sys.argv[1]),
                                 settings=ProviderSettings(options={"latency": 0.5})))
req = EditRequest(prompt="left behind", video=sys.argv[2], quality="std", keep_audio=True)
print(asyncio.run(p.submit(req)).job_id)   # the process ends while the job is queued
"""


def _in_new_process(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.ffmpeg
def test_a_job_is_resumable_by_id_from_another_process(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path)
    handle, seen = run_job(p, request(sample, images=[], elements=[], prompt="resume me"))
    assert isinstance(seen[-1], Succeeded)
    doc = json.loads(_in_new_process(_STATUS_SCRIPT, str(tmp_path), handle.job_id))
    assert doc["state"] == "succeeded"
    assert doc["result"]["video"]["url"] == seen[-1].result.video.url


@pytest.mark.ffmpeg
def test_a_job_left_by_an_ended_process_is_reported_by_status_and_finished_by_follow(
    sample: SampleMedia, tmp_path: Path
) -> None:
    job_id = _in_new_process(_SUBMIT_AND_EXIT, str(tmp_path), str(sample.video))
    p = provider(tmp_path)
    handle = p.resume(job_id)
    time.sleep(0.6)  # past its 0.5 s queue time: nothing renders it now
    looked = asyncio.run(p.status(handle))
    # status() only reports: running, with a note on how to continue, and nothing rendered.
    assert isinstance(looked, Running), looked
    [note] = looked.logs
    assert "not alive" in note and f"kling result mock {job_id} -o OUT.mp4" in note
    record = p.store.load(job_id)
    assert record is not None and record.state == "queued" and record.started_at is None
    assert not list(p.store.dir(job_id).glob("*.mp4"))
    # follow(), a waiting caller's poll, adopts it and renders it here; each poll waits at most
    # a fraction of a second, so the caller polls on to the end.
    async def follow_to_end() -> Any:
        status = await p.follow(handle)
        for _ in range(2000):
            if not isinstance(status, (Queued, Running)):
                break
            status = await p.follow(handle)
        return status

    final = asyncio.run(follow_to_end())
    assert isinstance(final, Succeeded), final
    assert final.result.report is not None and final.result.report["audio"]["kept"] is True
    assert output_path(final.result).is_file()
    again = asyncio.run(p.status(handle))
    assert isinstance(again, Succeeded) and not isinstance(again, Running)


def test_status_of_a_live_or_queued_job_carries_no_orphan_note(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path, {"latency": 30})

    async def go() -> Any:
        handle = await p.submit(await p.prepare(request(sample)))
        try:
            return await p.status(handle), await p.follow(handle)
        finally:
            await p.cancel(handle)

    looked, followed = asyncio.run(go())
    assert isinstance(looked, Queued) and isinstance(followed, Queued)


def test_bad_and_unknown_job_ids(tmp_path: Path) -> None:
    p = provider(tmp_path)
    with pytest.raises(ValidationError, match=r"^job_id: "):
        p.resume("../../etc")
    with pytest.raises(ProviderError) as err:
        asyncio.run(p.status(p.resume("mock-" + "0" * 20)))
    assert err.value.status_code == 404


# -- cancellation ------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_cancel_while_queued(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path, {"latency": 30})

    async def go() -> tuple[bool, Any]:
        handle = await p.submit(await p.prepare(request(sample)))
        assert isinstance(await p.status(handle), Queued)
        accepted = await p.cancel(handle)
        return accepted, await p.status(handle)

    accepted, status = asyncio.run(go())
    assert accepted and isinstance(status, Cancelled)
    (job,) = _jobs(tmp_path)
    assert not list((tmp_path / "jobs" / job).glob("*.mp4"))


@pytest.mark.ffmpeg
def test_cancel_while_running_kills_the_render(sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    procs: list[subprocess.Popen[bytes]] = []

    class Spy(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            procs.append(self)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    _real_time_render(monkeypatch)
    p = provider(tmp_path)

    async def go() -> tuple[bool, Any, Any]:
        handle = await p.submit(await p.prepare(request(sample)))
        for _ in range(400):
            if procs:
                break
            await asyncio.sleep(0.01)
        running = await p.status(handle)
        accepted = await p.cancel(handle)
        return accepted, running, await p.status(handle)

    accepted, running, status = asyncio.run(go())
    assert isinstance(running, Running)
    assert accepted and isinstance(status, Cancelled)
    assert procs and procs[0].returncode is not None
    (job,) = _jobs(tmp_path)
    leftovers = [n for n in os.listdir(tmp_path / "jobs" / job) if n.endswith((".mp4", ".part"))]
    assert leftovers == []


@pytest.mark.ffmpeg
def test_cancel_after_success_is_refused(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path)
    handle, seen = run_job(p, request(sample, images=[], elements=[], prompt="done"))
    assert isinstance(seen[-1], Succeeded)
    assert asyncio.run(p.cancel(handle)) is False


# -- scripted failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail", "error_type", "status_code", "retryable"),
    [
        ("rate_limited", RateLimitedError, 429, True),
        ("insufficient_credits", InsufficientCreditsError, 402, False),
        ("server_error", ProviderError, 500, True),
    ],
)
def test_submit_phase_failures(
    sample: SampleMedia, tmp_path: Path, fail: str, error_type: type[ProviderError], status_code: int, retryable: bool
) -> None:
    p = provider(tmp_path)
    with pytest.raises(ProviderError) as err:
        asyncio.run(p.submit(request(sample, options={"fail": fail})))
    assert type(err.value) is error_type
    assert err.value.status_code == status_code and err.value.retryable is retryable
    assert err.value.provider == "mock"
    assert _jobs(tmp_path) == []  # refused at submit: no job exists


def test_rate_limit_retry_after_from_config_and_request_wins(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path, {"fail": "rate_limited", "retry_after": 2})
    with pytest.raises(RateLimitedError) as err:
        asyncio.run(p.submit(request(sample)))
    assert err.value.retry_after == 2.0
    with pytest.raises(RateLimitedError) as err:
        asyncio.run(p.submit(request(sample, options={"retry_after": 7})))
    assert err.value.retry_after == 7.0
    with pytest.raises(InsufficientCreditsError):
        asyncio.run(p.submit(request(sample, options={"fail": "insufficient_credits"})))


@pytest.mark.parametrize(
    ("fail", "kind", "message"),
    [
        ("content_policy", "content_policy", "content moderation"),
        ("completed_with_error", "validation", "elementReferList: size must be between 1 and 3"),
    ],
)
def test_status_phase_failures(sample: SampleMedia, tmp_path: Path, fail: str, kind: str, message: str) -> None:
    p = provider(tmp_path, {"latency": 0.1})
    _handle, seen = run_job(p, request(sample, options={"fail": fail}))
    assert states(seen) == ["queued", "running", "failed"] or states(seen) == ["queued", "failed"]
    final = seen[-1]
    assert isinstance(final, Failed)
    assert final.error.kind == kind and message in final.error.message and not final.error.retryable


def test_timeout_failure_never_finishes(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path, {"fail": "timeout"})

    async def go() -> list[str]:
        handle = await p.submit(request(sample))
        seen = []
        for _ in range(5):
            seen.append((await p.status(handle)).state)
            await asyncio.sleep(0.05)
        return seen

    assert asyncio.run(go()) == ["running"] * 5


def _client(tmp_path: Path, options: dict[str, Any], poll: PollSettings | None = None) -> AsyncEditClient:
    config = KlingConfig(
        default_provider="mock",
        media=MediaSettings(work_dir=str(tmp_path / "work")),
        providers={"mock": ProviderSettings(options=options, poll=poll)},
    )
    return AsyncEditClient(config=config, use_journal=False, environ={})


@pytest.mark.parametrize(
    ("fail", "error_type"),
    [
        ("content_policy", ContentPolicyError),
        ("completed_with_error", ProviderValidationError),
        ("rate_limited", RateLimitedError),
        ("insufficient_credits", InsufficientCreditsError),
    ],
)
def test_scripted_failures_reach_the_client_as_canonical_errors(
    sample: SampleMedia, tmp_path: Path, fail: str, error_type: type[Exception]
) -> None:
    client = _client(tmp_path, {"fail": fail})
    with pytest.raises(error_type):
        asyncio.run(client.edit(request(sample)))


def test_timeout_failure_fires_the_client_deadline(sample: SampleMedia, tmp_path: Path) -> None:
    client = _client(tmp_path, {"fail": "timeout"}, PollSettings(initial=0.02, factor=1.0, max=0.02, deadline=0.3))
    started = time.monotonic()
    with pytest.raises(JobTimeoutError) as err:
        asyncio.run(client.edit(request(sample)))
    assert time.monotonic() - started < 5
    assert err.value.provider == "mock" and err.value.job_id.startswith("mock-")


# -- options -------------------------------------------------------------------------------


def test_unknown_or_bad_options_are_named(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path)
    problems = p.check(request(sample, options={"fail": "explode", "colour": "red"}))
    assert {pr.path for pr in problems} == {"options.fail", "options.colour"}
    with pytest.raises(ValidationError) as err:
        asyncio.run(p.submit(request(sample, options={"fail": "explode"})))
    text = str(err.value)
    assert text.startswith("options.fail: 'explode' is not one of none, rate_limited")
    assert "completed_with_error" in text
    with pytest.raises(ValidationError, match=r"options\.latency"):
        asyncio.run(p.submit(request(sample, options={"latency": -1})))


def test_bad_config_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        provider(tmp_path, {"fail": "sometimes"})
    assert err.value.key == "providers.mock.options.fail"
    with pytest.raises(ConfigError, match=r"providers\.mock\.options\.speed: unknown option"):
        provider(tmp_path, {"speed": 2})


# -- refusals ------------------------------------------------------------------------------


def test_not_a_video(sample: SampleMedia, tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_text("not a video\n" * 10)
    with pytest.raises(ValidationError, match=r"^video: not a readable video file$"):
        asyncio.run(provider(tmp_path / "w").prepare(request(sample, video=str(bogus))))


@pytest.mark.ffmpeg
def test_two_second_clip_is_refused_before_any_job(sample: SampleMedia, short_clip: Path, tmp_path: Path) -> None:
    p = provider(tmp_path)
    with pytest.raises(ValidationError) as err:
        asyncio.run(p.prepare(request(sample, video=str(short_clip))))
    assert str(err.value) == "video: 2.0 s long, at least 3 s"
    with pytest.raises(ValidationError):
        asyncio.run(p.submit(request(sample, video=str(short_clip))))
    assert _jobs(tmp_path) == []


@pytest.mark.ffmpeg
def test_long_4k_clip_is_refused_for_every_reason(sample: SampleMedia, long_4k_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        asyncio.run(provider(tmp_path).prepare(request(sample, video=str(long_4k_clip))))
    messages = {str(p) for p in err.value.problems}
    assert "video: 60.0 s long, at most 10.05 s" in messages
    assert "video: width 3840 px, must be 720–2160 px" in messages
    assert all(p.path == "video" for p in err.value.problems)


def test_playlist_renamed_to_mp4_is_unsafe(sample: SampleMedia, tmp_path: Path, loopback: LoopbackServer) -> None:
    evil = write_playlist(tmp_path / "evil.mp4", loopback.url("seg.ts"))
    with pytest.raises(UnsafeMediaError) as err:
        asyncio.run(provider(tmp_path / "w").submit(request(sample, video=str(evil))))
    assert err.value.field == "video"
    assert loopback.hits == []


def test_small_image_is_refused(sample: SampleMedia, tmp_path: Path) -> None:
    from kling_core.media.samples import make_image

    tiny = make_image(tmp_path / "tiny.png", (1, 2, 3), size=100)
    with pytest.raises(ValidationError, match=r"^images\[0\]: 100x100 px, each side at least 300 px$"):
        asyncio.run(provider(tmp_path / "w").prepare(request(sample, images=[str(tiny)])))


def test_loopback_url_refused_without_the_allowance(sample: SampleMedia, tmp_path: Path, loopback: LoopbackServer) -> None:
    (loopback.root / "clip.mp4").write_bytes(sample.video.read_bytes())
    with pytest.raises(UnsafeMediaError, match=r"^video: refusing to fetch 127\.0\.0\.1"):
        asyncio.run(provider(tmp_path).prepare(request(sample, video=loopback.url("clip.mp4"))))
    assert loopback.hits == []


def test_loopback_urls_downloaded_with_the_allowance(sample: SampleMedia, tmp_path: Path, loopback: LoopbackServer) -> None:
    (loopback.root / "clip.mp4").write_bytes(sample.video.read_bytes())
    (loopback.root / "red.png").write_bytes(sample.images[0].read_bytes())
    p = provider(tmp_path, allow_private_urls=True)
    prepared = asyncio.run(
        p.prepare(request(sample, video=loopback.url("clip.mp4"), images=[loopback.url("red.png")]))
    )
    assert Path(prepared.video).read_bytes() == sample.video.read_bytes()
    assert Path(prepared.images[0]).is_file() and Path(prepared.images[0]).is_relative_to(tmp_path)
    assert sorted(loopback.hits) == ["/clip.mp4", "/red.png"]


def test_dry_run_shows_the_plan_without_a_job(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path)
    plan = asyncio.run(p.dry_run(request(sample)))
    assert plan["valid"] is True
    assert [t["ref"] for t in plan["plan"]["tiles"]] == ["@Image1", "@Element1"]
    assert _jobs(tmp_path) == []


def test_follow_helper_sees_terminal_states_only_once(sample: SampleMedia, tmp_path: Path) -> None:
    # Guard for the helper itself: a finished job is reported once, then polling stops.
    p = provider(tmp_path, {"fail": "content_policy"})

    async def go() -> int:
        handle = await p.submit(request(sample))
        return len([s for s in await follow(p, handle) if isinstance(s, Failed)])

    assert asyncio.run(go()) == 1


_CANCEL_SCRIPT = """
import asyncio, sys
from pathlib import Path
from kling_core.provider import ProviderContext
from kling_core_plugins.mock import MockProvider
p = MockProvider(ProviderContext(name="mock", work_dir=Path(sys.argv[1])))
print(asyncio.run(p.cancel(p.resume(sys.argv[2]))))
"""


def _real_time_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make renders read the source at its own frame rate (-re): a 3.2 s job that costs little CPU."""
    real = render.inputs

    def slow(plan: Any, video: Any) -> list[FfmpegInput]:
        first, *rest = real(plan, video)
        return [attrs.evolve(first, options=("-re",)), *rest]

    monkeypatch.setattr(render, "inputs", slow)


@pytest.mark.ffmpeg
@pytest.mark.parametrize("phase", ["queued", "running"])
def test_cancel_from_another_process(sample: SampleMedia, tmp_path: Path, phase: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _real_time_render(monkeypatch)
    latency = 30 if phase == "queued" else 0
    p = provider(tmp_path, {"latency": latency})

    async def go() -> tuple[str, Any]:
        handle = await p.submit(await p.prepare(request(sample)))
        for _ in range(500):
            if (await p.status(handle)).state == phase:
                break
            await asyncio.sleep(0.01)
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CANCEL_SCRIPT, str(tmp_path), handle.job_id, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await other.communicate()
        return out.decode().strip(), await p.status(handle)

    answer, status = asyncio.run(go())
    assert answer == "True"
    assert isinstance(status, Cancelled)
    (job,) = _jobs(tmp_path)
    assert not [n for n in os.listdir(tmp_path / "jobs" / job) if n.endswith((".mp4", ".part"))]


@pytest.mark.ffmpeg
def test_render_timeout_fails_the_job_and_cleans_up(sample: SampleMedia, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _real_time_render(monkeypatch)  # a 3.2 s render against a 0.3 s limit
    p = provider(tmp_path, ffmpeg_timeout=0.3)
    _handle, seen = run_job(p, request(sample))
    final = seen[-1]
    assert isinstance(final, Failed)
    assert final.error.kind == "job_failed" and "timed out after 0.3s" in final.error.message
    (job,) = _jobs(tmp_path)
    assert not [n for n in os.listdir(tmp_path / "jobs" / job) if n.endswith((".mp4", ".part"))]
