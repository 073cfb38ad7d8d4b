"""Probing through PyAV: facts of real files, and refusals by type for everything else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from media_fixtures import (
    SAMPLE_DURATION,
    LoopbackServer,
    loopback,
    sample,
    write_concat,
    write_playlist,
)

from kling_core.errors import UnsafeMediaError, ValidationError
from kling_core.media import SampleMedia, probe_image, probe_video
from kling_core.media.samples import make_clip, make_image

__all__ = ["loopback", "sample"]

pytestmark = pytest.mark.ffmpeg


def test_probe_video_reports_the_real_facts(sample: SampleMedia) -> None:
    info = probe_video(sample.video)
    assert (info.width, info.height, info.fps) == (1280, 720, 24.0)
    assert info.container == "mp4" and info.demuxer == "mov"
    assert abs(info.duration - SAMPLE_DURATION) < 1 / 24 + 0.03
    assert info.video_codec == "h264"
    assert info.has_audio and info.audio_codec == "aac"
    assert info.size_bytes == sample.video.stat().st_size


def test_probe_tells_mov_from_mp4_and_sees_no_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mov", duration=1.0, size=(320, 240), fps=24, audio=False)
    info = probe_video(clip)
    assert info.container == "mov"
    assert not info.has_audio and info.audio_codec is None


def test_probe_image(sample: SampleMedia, tmp_path: Path) -> None:
    png = probe_image(sample.images[0], "images[0]")
    assert (png.format, png.demuxer, png.width, png.height) == ("png", "png_pipe", 512, 512)
    jpg = probe_image(make_image(tmp_path / "x.jpg", (10, 200, 10), size=320), "images[1]")
    assert (jpg.format, jpg.width) == ("jpeg", 320)


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("just some words, not a movie\n" * 20)
    with pytest.raises(ValidationError) as err:
        probe_video(bogus, "video")
    assert str(err.value) == "video: not a readable video file"
    assert err.value.problems[0].path == "video"


def test_image_given_as_video_names_what_it_is(sample: SampleMedia, tmp_path: Path) -> None:
    disguised = tmp_path / "clip.mp4"
    shutil.copy(sample.images[0], disguised)
    with pytest.raises(ValidationError, match=r"^video: not a readable video file \(it is png\)$"):
        probe_video(disguised, "video")


def test_video_given_as_image(sample: SampleMedia) -> None:
    with pytest.raises(ValidationError, match=r"^images\[0\]: not a readable image file"):
        probe_image(sample.video, "images[0]")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="video: file not found"):
        probe_video(tmp_path / "nope.mp4")


def test_playlist_renamed_to_mp4_is_unsafe_and_never_fetched(tmp_path: Path, loopback: LoopbackServer) -> None:
    (loopback.root / "seg.ts").write_bytes(b"\x47" * 188 * 4)
    evil = write_playlist(tmp_path / "evil.mp4", loopback.url("seg.ts"))
    for probe, field in ((probe_video, "video"), (probe_image, "images[0]")):
        with pytest.raises(UnsafeMediaError) as err:
            probe(evil, field)
        assert err.value.field == field
        assert "playlist" in str(err.value)
    assert loopback.hits == []


def test_concat_list_renamed_to_mp4_is_unsafe(sample: SampleMedia, tmp_path: Path) -> None:
    evil = write_concat(tmp_path / "cc.mp4", sample.video)
    with pytest.raises(UnsafeMediaError, match=r"^video: "):
        probe_video(evil, "video")


def test_huge_declared_picture_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_core.media import probe as probe_module

    image = make_image(tmp_path / "big.png", (9, 9, 9), size=400)
    monkeypatch.setattr(probe_module, "MAX_PIXELS", 399 * 399)
    with pytest.raises(ValidationError, match=r"^images\[0\]: 400x400 px is larger than 8K"):
        probe_image(image, "images[0]")
