"""The render plan as a pure function: geometry and grade hold for every valid input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kling_core_plugins.mock import render

from kling_core.contract.models import EditRequest
from kling_core.media.probe import ImageInfo, VideoInfo


def _video(width: int, height: int, audio: bool) -> VideoInfo:
    return VideoInfo(
        path="/in/clip.mp4", container="mp4", demuxer="mov", duration=5.0, width=width, height=height,
        fps=30.0, video_codec="h264", has_audio=audio, audio_codec="aac" if audio else None, size_bytes=1,
    )


def _image(i: int) -> ImageInfo:
    return ImageInfo(path=f"/in/{i}.png", format="png", demuxer="png_pipe", width=512, height=512, size_bytes=1)


sides = st.integers(min_value=720, max_value=2160)


@settings(max_examples=60, deadline=None)
@given(
    width=sides,
    height=sides,
    quality=st.sampled_from(["std", "pro"]),
    n_images=st.integers(0, 4),
    n_elements=st.integers(0, 4),
    keep_audio=st.booleans(),
    has_audio=st.booleans(),
    prompt=st.text(min_size=1, max_size=80).filter(lambda s: s.strip() != ""),
)
def test_plan_geometry(width: int, height: int, quality: str, n_images: int, n_elements: int,
                       keep_audio: bool, has_audio: bool, prompt: str) -> None:
    n_elements = min(n_elements, 4 - n_images)
    request = EditRequest(prompt=prompt, video="/in/clip.mp4", quality=quality, keep_audio=keep_audio)  # type: ignore[arg-type]
    p = render.plan(request, _video(width, height, has_audio), [_image(i) for i in range(n_images)],
                    [_image(10 + i) for i in range(n_elements)])
    # Size: the quality's short side, even sides, aspect kept to within a rounding step.
    assert min(p.width, p.height) == {"std": 720, "pro": 1080}[quality]
    assert p.width % 2 == 0 and p.height % 2 == 0
    assert abs(p.width / p.height - width / height) < 2.5 / min(p.width, p.height)
    # Tiles: one per reference, images first, in the fixed corner order, inside the frame,
    # on even pixels, never overlapping.
    assert [t.kind for t in p.tiles] == ["image"] * n_images + ["element"] * n_elements
    assert [t.slot for t in p.tiles] == list(render.SLOTS[: n_images + n_elements])
    for t in p.tiles:
        assert t.x >= 0 and t.x + t.size <= p.width and t.y >= 0 and t.y + t.size <= p.height
        assert t.x % 2 == 0 and t.y % 2 == 0 and t.size % 2 == 0
    for a in p.tiles:
        for b in p.tiles:
            if a is not b:
                assert a.x + a.size <= b.x or b.x + b.size <= a.x or a.y + a.size <= b.y or b.y + b.size <= a.y
    assert p.audio_out == (keep_audio and has_audio)
    args = render.output_args(p)
    assert ("-an" in args) != p.audio_out
    assert 30 <= p.grade.hue < 330 and 1.0 <= p.grade.saturation <= 1.5
