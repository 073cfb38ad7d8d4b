"""The poll schedule (kling_core.client.schedule) as a pure function, its data and its config.

Walks a whole job's polls in virtual time (no clock, no sleep): how many there are and how late
each ending is noticed, for jobs ending early, inside the typical range and after it.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kling_core_plugins.fal import FalProvider
from kling_core_plugins.segmind import SegmindProvider

from kling_core.client.schedule import PollSchedule
from kling_core.config import config_from_document
from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.errors import ValidationError
from kling_core.http.retry import backoff_delays
from kling_core.settings import PollSettings

RANGE = (223.0, 255.0)


def polls(schedule: PollSchedule, ends: float, *, seed: int = 1, pushed: bool = False) -> list[float]:
    """The times (seconds after submit) a job ending at ``ends`` is polled, the last one seeing it."""
    rng = random.Random(seed)
    backoff = backoff_delays(schedule.poll, rng)
    t, times = 0.0, [0.0]
    while t < ends:
        t += schedule.delay(t, next(backoff), rng.random(), pushed=pushed)
        times.append(t)
    return times


def test_without_a_typical_range_the_schedule_is_the_backoff() -> None:
    poll = PollSettings(initial=2.0, factor=1.5, max=20.0, jitter=0.0)
    schedule = PollSchedule(poll)
    backoff = backoff_delays(poll)
    assert [schedule.delay(t, next(backoff), 0.5) for t in (0, 2, 5)] == [2.0, 3.0, 4.5]


@pytest.mark.parametrize("ends", [223.0, 224.3, 240.0, 254.9, 255.0])
def test_a_job_ending_inside_the_range_is_noticed_within_window_every(ends: float) -> None:
    schedule = PollSchedule(PollSettings(initial=2.0), RANGE)
    for seed in range(20):
        times = polls(schedule, ends, seed=seed)
        assert times[-1] - ends <= schedule.poll.window_every
        assert len(times) <= 60  # fal-client's 0.1 s makes ~2,400 for such a job


@pytest.mark.parametrize("ends", [300.0, 600.0, 1500.0])
def test_an_outlier_is_noticed_within_its_fraction_of_the_duration(ends: float) -> None:
    schedule = PollSchedule(PollSettings(initial=2.0, max=120.0), RANGE)
    for seed in range(20):
        times = polls(schedule, ends, seed=seed)
        assert times[-1] - ends <= schedule.poll.outlier_fraction * ends


def test_polls_before_the_range_are_rare_and_close_ones_start_with_it() -> None:
    schedule = PollSchedule(PollSettings(initial=2.0, jitter=0.0), RANGE)
    times = polls(schedule, 400.0)
    early = [t for t in times if t < RANGE[0]]
    assert len(early) <= 20
    window = schedule.poll.window_every
    assert any(RANGE[0] - window <= t <= RANGE[0] for t in times)  # close polls start by the range's start
    gaps = [b - a for a, b in itertools.pairwise(times) if RANGE[0] <= a < RANGE[1]]
    assert max(gaps) <= window


def test_a_live_push_channel_leaves_only_safety_polls() -> None:
    schedule = PollSchedule(PollSettings(push_every=60.0, jitter=0.25), RANGE)
    for t in (0.0, 230.0, 900.0):
        assert 45.0 <= schedule.delay(t, 2.0, 0.99, pushed=True) <= 60.0
    assert len(polls(schedule, 240.0, pushed=True)) <= 6


@settings(max_examples=200, deadline=None)
@given(low=st.floats(1, 3000), width=st.floats(0, 600), elapsed=st.floats(0, 10_000), backoff=st.floats(0, 3600),
       draw=st.floats(0, 1, exclude_max=True), jitter=st.floats(0, 0.9))
def test_every_delay_is_positive_and_bounded(low: float, width: float, elapsed: float, backoff: float,
                                             draw: float, jitter: float) -> None:
    poll = PollSettings(jitter=jitter, max=3600.0)
    delay = PollSchedule(poll, (low, low + width)).delay(elapsed, backoff, draw)
    assert delay > 0 or backoff == 0
    assert delay <= max(backoff, poll.max, poll.window_every)
    if low <= elapsed <= low + width:
        assert delay <= poll.window_every


def caps(typical: tuple[float, float] | None) -> ProviderCapabilities:
    return ProviderCapabilities(models=(ModelCapabilities(model="kling-o1", typical_seconds=typical),
                                        ModelCapabilities(model="kling-o3")))


def test_the_range_comes_from_config_by_model_then_for_all_then_the_capability_data() -> None:
    data = caps((100.0, 200.0))
    assert PollSchedule.for_job(PollSettings(), data, "kling-o1").typical == (100.0, 200.0)
    assert PollSchedule.for_job(PollSettings(), data, "kling-o3").typical is None
    assert PollSchedule.for_job(PollSettings(), data, None).typical is None
    every = PollSettings(typical_seconds=(50.0, 40.0))  # either order
    assert PollSchedule.for_job(every, data, "kling-o1").typical == (40.0, 50.0)
    by_model = PollSettings(typical_seconds=(50.0, 60.0), typical_by_model={"kling-o3": (7.0, 9.0)})
    assert PollSchedule.for_job(by_model, data, "kling-o3").typical == (7.0, 9.0)
    assert PollSchedule.for_job(by_model, data, "kling-o1").typical == (50.0, 60.0)


def test_hosts_carry_their_typical_durations_as_data() -> None:
    segmind = SegmindProvider.capabilities.model("kling-o1")
    assert segmind is not None and segmind.typical_seconds == (223.0, 255.0)  # published
    fal = FalProvider.capabilities.model("kling-o1")
    assert fal is not None and fal.typical_seconds is not None  # inferred, marked so in the plugin
    assert FalProvider.spec.stream is not None and FalProvider.spec.stream.route == "{status_url}/stream"


def test_config_takes_the_schedule_and_names_a_bad_field() -> None:
    cfg = config_from_document({"providers": {"segmind": {"poll": {
        "typical_seconds": [200, 260], "typical_by_model": {"kling-o3": [100, 150]}, "window_every": 1.0,
        "outlier_fraction": 0.1, "push_every": 30, "stream": False}}}})
    poll = cfg.providers["segmind"].poll
    assert poll is not None and poll.typical_for("kling-o3") == (100.0, 150.0) and not poll.stream
    bad = {"typical_seconds": [1, 2, 3]}, {"typical_seconds": [-1, 5]}, {"window_every": 0}, \
        {"outlier_fraction": 1.0}, {"typical_by_model": {"kling-o1": [1e9, 1]}}, {"stream": "yes"}
    for poll_doc in bad:
        with pytest.raises(ValidationError) as info:
            config_from_document({"providers": {"segmind": {"poll": poll_doc}}})
        field = next(iter(poll_doc))
        assert any(p.path.startswith(f"providers.segmind.poll.{field}") for p in info.value.problems)


def test_max_bounds_the_window_gap_too() -> None:
    schedule = PollSchedule(PollSettings(max=1.0, window_every=1.5, jitter=0.0), RANGE)
    assert schedule.delay(230.0, 1.0, 0.5) == 1.0
    assert schedule.delay(400.0, 1.0, 0.5) == 1.0  # an outlier's 5 % (20 s) too
