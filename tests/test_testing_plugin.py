"""The pytest11 plugin's fixtures and option, used the way a plugin author would use them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from kling_core.contract.capabilities import VideoLimits
from kling_core.errors import ValidationError
from kling_core.provider import Provider
from kling_core.testing import SampleMedia
from kling_core.testing.replay import CallLog

kling_example = pytest.importorskip("kling_example", reason="pip install -e examples/kling-example-provider")


def test_record_option_is_off_by_default(pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_core.testing.pytest_plugin import _env_record

    assert pytestconfig.getoption("kling_record") is False or _env_record()
    monkeypatch.setenv("KLING_RECORD", "1")
    assert _env_record() is True
    monkeypatch.setenv("KLING_RECORD", "0")
    assert _env_record() is False


def test_sample_media_meets_the_documented_source_limits(kling_sample_media: SampleMedia) -> None:
    limits = VideoLimits()
    with av.open(str(kling_sample_media.video)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration or 0) / av.time_base
        assert min(stream.width, stream.height) >= limits.min_side
        assert limits.min_fps <= float(stream.average_rate or 0) <= limits.max_fps
        assert limits.min_duration <= duration <= limits.max_duration
        assert container.streams.audio, "an audio track, so keep_audio has something to keep"
    assert kling_sample_media.video.stat().st_size < 5 * 1024 * 1024
    with av.open(str(kling_sample_media.image)) as image:
        frame = next(image.decode(video=0))
        assert min(frame.width, frame.height) >= 300


def test_provider_factory_uses_canaries_and_refuses_requests(
    kling_provider_factory: Callable[..., Provider], kling_call_log: CallLog
) -> None:
    provider = kling_provider_factory(kling_example.ExampleProvider)
    key = provider.secrets["api_key"].reveal()
    assert key.startswith("sk-CANARY-")
    handle = provider.resume("ed_1")

    async def go() -> Any:
        try:
            return await provider.status(handle)
        finally:
            await provider.aclose()

    with pytest.raises(Exception) as info:
        asyncio.run(go())
    assert key not in str(info.value)
    assert len(kling_call_log) == 1 and kling_call_log.requests[0].url.path == "/v1/edits/ed_1"


def test_cassettes_fixture_loads_and_validates(kling_cassettes: Callable[[Path], list[Any]], tmp_path: Path) -> None:
    folder = Path(kling_example.__file__).parent / "cassettes"
    loaded = kling_cassettes(folder)
    assert {c.scenario for c in loaded} >= {"success-o1", "error-rate-limited"}
    (tmp_path / "bad.json").write_text("{}", "utf-8")
    with pytest.raises(ValidationError, match=r"bad\.json"):
        kling_cassettes(tmp_path)
