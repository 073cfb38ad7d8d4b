"""Mock provider fixes from review 6: an adopted job's polls stay short, every media and option
problem is reported at once, a damaged job record is a typed error, job ids are matched whole,
the dry-run plan is the render's report, and what an element's reference images change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling
from kling_core_plugins.mock import render
from kling_core_plugins.mock.jobs import JobRecord, check_job_id, new_job_id
from kling_core_plugins.mock.provider import output_path
from media_fixtures import LoopbackServer, loopback, sample, short_clip, write_playlist
from mock_gate import gate_renders
from mock_helpers import provider, request, run_job

from kling_core.client import AsyncEditClient
from kling_core.config import KlingConfig
from kling_core.contract.models import EditRequest, Element
from kling_core.contract.status import JobStatus, Running, Succeeded
from kling_core.errors import ConfigError, JobTimeoutError, ProviderError, UnsafeMediaError, ValidationError
from kling_core.media import SampleMedia, probe_image, probe_video
from kling_core.serialization import unstructure
from kling_core.settings import MediaSettings, ProviderSettings

__all__ = ["loopback", "sample", "short_clip"]


@pytest.fixture(autouse=True)
def _only_first_party_mock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other installed plugins must not change what the CLI commands here print.
    monkeypatch.setenv("KLING_PLUGINS", "mock")


def _abandoned_job(work: Path, req: EditRequest) -> str:
    """The record `kling edit --no-wait` leaves once its process has ended: queued, past its
    queue time, and no process holding its render lock."""
    p = provider(work)
    job_id = new_job_id()
    p.store.save(JobRecord(job_id=job_id, model=req.model, state="queued", submitted_at=p.ctx.clock() - 1.0,
                           request=unstructure(req)))
    return job_id


# -- F9: a job adopted by a waiting command keeps its polls short ---------------------------


@pytest.mark.ffmpeg
def test_an_adopted_job_honours_the_wait_timeout_and_reports_progress(
    sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    job_id = _abandoned_job(work, request(sample, images=[], elements=[], prompt="adopt me"))
    config = KlingConfig(default_provider="mock", media=MediaSettings(work_dir=str(work)),
                         providers={"mock": ProviderSettings()})
    client = AsyncEditClient(config=config, use_journal=False, environ={})
    p = client.provider("mock")
    gate = gate_renders(p, monkeypatch)
    seen: list[JobStatus] = []

    async def go() -> Any:
        handle = p.resume(job_id)
        # Before the fix the first poll awaited the whole render: the guard below fires instead.
        with pytest.raises(JobTimeoutError):
            await asyncio.wait_for(client.wait(handle, on_status=seen.append, timeout=0.3), 20)
        task = p._tasks[job_id]  # type: ignore[attr-defined]
        assert not task.done()  # the deadline ended the wait, not the render
        gate.set()
        return await asyncio.wait_for(client.wait(handle, on_status=seen.append), 120)

    result = asyncio.run(go())
    assert seen and isinstance(seen[0], Running)  # the caller heard of the adopted render at once
    assert output_path(result).is_file()
    assert isinstance(seen[-1], Succeeded)
    assert p.store.load(job_id).state == "succeeded"  # type: ignore[union-attr]


# -- F1: every media problem reported together -----------------------------------------------


def test_an_unreadable_image_is_reported_with_the_videos_problems(short_clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notimg.png"
    bad.write_text("hello")
    small = tmp_path / "alsobad.png"
    small.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature and nothing readable after it
    req = EditRequest(video=str(short_clip), prompt="x", images=(str(bad),),
                      elements=[Element(frontal_image=str(small), reference_images=(str(small),))])
    with pytest.raises(ValidationError) as err:
        asyncio.run(provider(tmp_path / "work").prepare(req))
    paths = [pr.path for pr in err.value.problems]
    assert paths == ["video", "images[0]", "elements[0].frontal_image", "elements[0].reference_images[0]"], paths
    assert "2.0 s long, at least 3 s" in str(err.value)


def test_an_unreadable_video_is_reported_with_the_images_problems(sample: SampleMedia, tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_text("not a video\n" * 10)
    bad = tmp_path / "notimg.png"
    bad.write_text("hello")
    with pytest.raises(ValidationError) as err:
        asyncio.run(provider(tmp_path / "work").prepare(EditRequest(video=str(bogus), prompt="x", images=(str(bad),))))
    assert [pr.path for pr in err.value.problems] == ["video", "images[0]"]


def test_the_cli_lists_both_problems_and_exits_2(short_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "notimg.png"
    bad.write_text("hello")
    code, _, err = kling(capsys, "edit", str(short_clip), "-p", "x", "--image", str(bad), "-o", "o.mp4", "-q")
    assert code == 2, err
    assert "video: 2.0 s long" in err and "images[0]:" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_unsafe_media_still_raises_at_once_with_its_type(sample: SampleMedia, tmp_path: Path,
                                                         loopback: LoopbackServer) -> None:
    playlist = write_playlist(tmp_path / "clip.mp4", loopback.url("/seg.ts"))
    bad = tmp_path / "notimg.png"
    bad.write_text("hello")
    with pytest.raises(UnsafeMediaError):
        asyncio.run(provider(tmp_path / "work").prepare(EditRequest(video=str(playlist), prompt="x",
                                                                    images=(str(bad),))))


# -- F10: a damaged job record ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "not a JSON document"),
        ('{"job_id": "', "not a JSON document"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"state": "running"}', "missing job_id, model, submitted_at, request"),
        (b"\xff\xfe{}", "not a JSON document"),
    ],
)
def test_a_damaged_job_record_is_a_typed_provider_error(tmp_path: Path, content: str | bytes, why: str) -> None:
    p = provider(tmp_path)
    job_id = "mock-" + "ab" * 10
    path = p.store.dir(job_id) / "job.json"
    path.parent.mkdir(parents=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ProviderError) as err:
        asyncio.run(p.status(p.resume(job_id)))
    assert err.value.code == "job_record_damaged" and err.value.job_id == job_id
    assert str(path) in str(err.value) and why in str(err.value)


def test_a_record_with_bad_values_is_damaged(tmp_path: Path) -> None:
    p = provider(tmp_path)
    job_id = "mock-" + "cd" * 10
    doc = {"job_id": job_id, "model": "kling-o1", "state": "exploded", "submitted_at": 1.0, "request": {}}
    path = p.store.dir(job_id) / "job.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    with pytest.raises(ProviderError, match="job_record_damaged"):
        p.store.load(job_id)
    path.write_text(json.dumps({**doc, "state": "queued"}))
    record = p.store.load(job_id)
    assert record is not None and record.state == "queued"


def test_the_cli_reports_a_damaged_record_in_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    job_id = "mock-" + "ef" * 10
    job_dir = tmp_path / "cache" / "mock" / "jobs" / job_id
    job_dir.mkdir(parents=True)
    (job_dir / "job.json").write_text("")
    code, out, err = kling(capsys, "status", "mock", job_id, "--json")
    assert code == 1, err
    assert "unexpected" not in err and "Traceback" not in err
    assert "damaged" in json.loads(out)["error"]["message"]
    assert str(job_dir / "job.json") in err


# -- F8: every bad mock option in config listed ----------------------------------------------


def test_every_bad_config_option_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        provider(tmp_path, {"latency": -1, "nosuch": 1, "fail": "sometimes"})
    text = str(err.value)
    for name in ("latency", "nosuch", "fail"):
        assert f"providers.mock.options.{name}: " in text, text
    assert text.startswith("3 problems")
    # One bad option keeps its key, as before.
    with pytest.raises(ConfigError) as one:
        provider(tmp_path, {"latency": -1})
    assert one.value.key == "providers.mock.options.latency"


def test_config_check_lists_every_mock_option_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "k.toml"
    cfg.write_text("[providers.mock.options]\nlatency = -1\nnosuch = 1\n")
    code, _, err = kling(capsys, "config", "check", "--config", str(cfg))
    assert code == 2, err
    assert "providers.mock.options.latency: " in err and "providers.mock.options.nosuch: " in err, err


# -- F5: job ids are matched whole -------------------------------------------------------------


@pytest.mark.parametrize("bad", ["mock-" + "0" * 20 + "\n", "mock-" + "0" * 20 + "\r\n", " mock-" + "0" * 20])
def test_a_job_id_with_extra_characters_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match=r"^job_id: "):
        check_job_id(bad)
    with pytest.raises(ValidationError):
        provider(tmp_path).resume(bad)
    assert check_job_id("mock-" + "0" * 20) == "mock-" + "0" * 20


# -- F4: the dry-run plan is the render's report without what only the file can say -----------


@pytest.mark.ffmpeg
def test_dry_run_plan_is_the_report_without_duration_and_size(sample: SampleMedia, tmp_path: Path) -> None:
    p = provider(tmp_path)
    req = request(sample, model="kling-o3", edit_mode="reference")
    planned = asyncio.run(p.dry_run(req))["plan"]
    _, seen = run_job(p, req)
    final = seen[-1]
    assert isinstance(final, Succeeded) and final.result.report is not None
    report = json.loads(json.dumps(final.result.report))
    for key in ("duration", "size_bytes"):
        del report["output"][key]
    assert json.loads(json.dumps(planned)) == report
    assert planned["model"] == "kling-o3" and planned["edit_mode"] == "reference"


# -- F3: an element's reference images are checked, not drawn ---------------------------------


def test_element_reference_images_do_not_change_the_render(sample: SampleMedia) -> None:
    video = probe_video(str(sample.video), "video")
    red, blue, green = (str(i) for i in sample.images)
    front = probe_image(red, "elements[0].frontal_image")

    def argv(frontal: str, refs: tuple[str, ...], info: Any = front) -> list[str]:
        req = EditRequest(video=str(sample.video), prompt="x",
                          elements=[Element(frontal_image=frontal, reference_images=refs)])
        plan = render.plan(req, video, [], [info])
        return [str(i.path) for i in render.inputs(plan, video)] + render.output_args(plan)

    # docs/mock.md: reference_images do not change the file; the frontal image does.
    assert argv(red, (red,)) == argv(red, (blue, green))
    assert argv(red, (red,)) != argv(blue, (red,), probe_image(blue, "elements[0].frontal_image"))
