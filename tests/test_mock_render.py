"""What the mock renders, checked by probing and sampling the output files."""

from __future__ import annotations

from pathlib import Path

import pytest
from kling_core_plugins.mock.provider import output_path
from kling_core_plugins.mock.render import Grade
from media_fixtures import SAMPLE_DURATION, close_to, frame_at, sample
from mock_helpers import provider, request, run_job

from kling_core.contract.models import EditResult
from kling_core.contract.status import Succeeded
from kling_core.media import SampleMedia, probe_video

__all__ = ["sample"]

pytestmark = pytest.mark.ffmpeg

PROMPT_A = "Restyle the scene after @Image1 and keep @Element1 in frame"
PROMPT_B = "Make it night-time, with @Image1 on a billboard and @Element1 walking"


def _render(work: Path, req_kwargs: dict[str, object], sample: SampleMedia) -> EditResult:
    p = provider(work)
    _handle, seen = run_job(p, request(sample, **req_kwargs))  # type: ignore[arg-type]
    final = seen[-1]
    assert isinstance(final, Succeeded), final
    return final.result


@pytest.fixture(scope="module")
def renders(sample: SampleMedia, tmp_path_factory: pytest.TempPathFactory) -> dict[str, EditResult]:
    """Every render this module checks, made once: std with audio (twice), another prompt,
    another reference image, and pro without audio or references."""
    work = tmp_path_factory.mktemp("mock-renders")
    return {
        "a": _render(work, {"prompt": PROMPT_A}, sample),
        "a_again": _render(work, {"prompt": PROMPT_A}, sample),
        "other_prompt": _render(work, {"prompt": PROMPT_B}, sample),
        "other_image": _render(work, {"prompt": PROMPT_A, "images": [str(sample.images[2])]}, sample),
        "pro_silent": _render(
            work, {"prompt": "grade only", "quality": "pro", "keep_audio": False, "images": [], "elements": []}, sample
        ),
    }


def test_duration_follows_the_input_within_one_frame(renders: dict[str, EditResult], sample: SampleMedia) -> None:
    source = probe_video(sample.video)
    for result in renders.values():
        out = probe_video(output_path(result))
        assert abs(out.duration - source.duration) <= 1 / source.fps, (out.duration, source.duration)
        assert out.fps == source.fps
    assert abs(source.duration - SAMPLE_DURATION) < 0.1


def test_resolution_per_quality(renders: dict[str, EditResult]) -> None:
    std = probe_video(output_path(renders["a"]))
    pro = probe_video(output_path(renders["pro_silent"]))
    assert (std.width, std.height) == (1280, 720)
    assert (pro.width, pro.height) == (1920, 1080)
    assert std.video_codec == pro.video_codec == "h264"
    assert std.container == "mp4"


def test_audio_kept_or_absent(renders: dict[str, EditResult]) -> None:
    kept = probe_video(output_path(renders["a"]))
    assert kept.has_audio and kept.audio_codec == "aac"
    silent = probe_video(output_path(renders["pro_silent"]))
    assert not silent.has_audio
    assert renders["a"].report is not None and renders["a"].report["audio"]["kept"] is True
    assert renders["pro_silent"].report is not None and renders["pro_silent"].report["audio"]["kept"] is False


def test_same_request_same_bytes(renders: dict[str, EditResult]) -> None:
    a, again = output_path(renders["a"]), output_path(renders["a_again"])
    assert a != again  # two jobs, two files …
    assert a.read_bytes() == again.read_bytes()  # … byte for byte the same


def test_different_prompt_or_reference_gives_a_different_file(renders: dict[str, EditResult]) -> None:
    a = output_path(renders["a"]).read_bytes()
    assert output_path(renders["other_prompt"]).read_bytes() != a
    assert output_path(renders["other_image"]).read_bytes() != a


def test_each_reference_leaves_a_tile_at_its_corner(renders: dict[str, EditResult], sample: SampleMedia) -> None:
    for key, image_colour in (("a", sample.colours[0]), ("other_image", sample.colours[2])):
        result = renders[key]
        assert result.report is not None
        tiles = {t["ref"]: t for t in result.report["tiles"]}
        assert [t["slot"] for t in result.report["tiles"]] == ["top-left", "top-right"]
        frame = frame_at(output_path(result), 1.0)
        for ref, colour in (("@Image1", image_colour), ("@Element1", sample.colours[1])):
            t = tiles[ref]
            inset = t["size"] // 4  # stay clear of the white frame drawn round each image
            got = frame.mean(t["x"] + inset, t["y"] + inset, t["size"] - 2 * inset, t["size"] - 2 * inset)
            assert close_to(got, colour, 20), (key, ref, got, colour)


def test_tile_geometry_is_the_documented_one(renders: dict[str, EditResult]) -> None:
    report = renders["a"].report
    assert report is not None
    tl, tr = report["tiles"]
    # 720 short side: tile = 20 % = 144 px, margin = 3 % ≈ 22 px (both even).
    assert (tl["x"], tl["y"], tl["size"]) == (22, 22, 144)
    assert (tr["x"], tr["y"]) == (1280 - 22 - 144, 22)
    assert (tl["source"], tr["source"]) == ("images[0]", "elements[0].frontal_image")


def test_prompt_changes_the_picture(renders: dict[str, EditResult], sample: SampleMedia) -> None:
    source = frame_at(sample.video, 1.0)
    graded = frame_at(output_path(renders["a"]), 1.0)
    other = frame_at(output_path(renders["other_prompt"]), 1.0)
    # The middle of the picture, away from every tile.
    region = (400, 250, 480, 220)
    assert graded.difference(source, *region) > 25
    assert graded.difference(other, *region) > 25
    report_a, report_b = renders["a"].report, renders["other_prompt"].report
    assert report_a is not None and report_b is not None
    assert report_a["grade"] != report_b["grade"]
    assert 30 <= report_a["grade"]["hue_degrees"] < 330


def test_result_shape(renders: dict[str, EditResult]) -> None:
    r = renders["a"]
    path = output_path(r)
    assert r.video.url == path.as_uri() and r.video.url.startswith("file://")
    assert r.video.content_type == "video/mp4"
    assert r.video.file_name == path.name and r.video.file_size == path.stat().st_size
    assert r.provider == "mock" and r.model == "kling-o1"
    assert r.timings.submitted_at is not None and r.timings.completed_at is not None
    assert r.timings.completed_at >= r.timings.submitted_at
    assert r.report is not None and r.report["output"]["size_bytes"] == path.stat().st_size


def test_grade_is_a_pure_function_of_prompt_model_and_mode(sample: SampleMedia) -> None:
    a = Grade.for_request(request(sample, prompt=PROMPT_A))
    assert a == Grade.for_request(request(sample, prompt=PROMPT_A, quality="pro"))
    assert a != Grade.for_request(request(sample, prompt=PROMPT_A, model="kling-o3"))
    assert a != Grade.for_request(request(sample, prompt=PROMPT_B))
