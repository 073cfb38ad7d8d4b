"""The core client: checks before any call, at-most-once submit, polling, deadlines, errors."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from fake_provider import FakePlugin, FakeProvider, LosingFake

from kling_core.client import AsyncEditClient, EditClient
from kling_core.config import config_from_document
from kling_core.contract.status import Failed, JobError, Running
from kling_core.errors import (
    ContentPolicyError,
    JobFailedError,
    JobTimeoutError,
    MissingKeyError,
    ProviderError,
    ProviderValidationError,
    SubmitUncertainError,
    UnsupportedError,
    ValidationError,
)
from kling_core.http.retry import backoff_delays
from kling_core.joblog import JobLog, canonical
from kling_core.plugins import PluginHost
from kling_core.provider import JobHandle
from kling_core.settings import PollSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _reset() -> None:
    FakeProvider.script = None
    FakeProvider.submits = []
    FakeProvider.cancels = []
    LosingFake.known = {}
    LosingFake.lookups = []


def make_client(clock: FakeClock, tmp_path: Path, **config: object) -> AsyncEditClient:
    host = PluginHost(entrypoints=False, plugins=[("fake", FakePlugin())])
    return AsyncEditClient(
        provider="fake", config=config_from_document(config), host=host, sleep=clock.sleep, clock=clock,
        journal=JobLog(tmp_path), rng=random.Random(1),
    )


URL = "https://media.example/in.mp4"


def test_a_job_polls_with_backoff_and_returns_the_result(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    seen: list[str] = []
    result = asyncio.run(client.edit(client.request(URL, "grade it"), on_status=lambda s: seen.append(s.state)))
    assert seen == ["queued", "running", "succeeded"]
    assert clock.sleeps == [1.0, 2.0]  # the provider's cadence: 1 s, ×2
    assert result.video.url == "https://cdn.example/out.mp4"


def test_backoff_grows_to_the_cap_with_bounded_jitter() -> None:
    poll = PollSettings(initial=1.0, factor=1.5, max=20.0, jitter=0.25)
    delays = [d for d, _ in zip(backoff_delays(poll, random.Random(7)), range(30), strict=False)]
    nominal = [min(1.0 * 1.5**i, 20.0) for i in range(30)]
    assert all(0.75 * n <= d <= min(1.25 * n, 20.0) for d, n in zip(delays, nominal, strict=True))
    assert delays[-1] >= 15.0  # reached the cap


def test_the_deadline_raises_a_timeout_naming_the_job(clock: FakeClock, tmp_path: Path) -> None:
    FakeProvider.script = [Running("job-1", "fake", progress=float(i % 100)) for i in range(1000)]
    client = make_client(clock, tmp_path)
    with pytest.raises(JobTimeoutError) as info:
        asyncio.run(client.edit(client.request(URL, "x")))
    assert "job-1" in str(info.value) and "kling status fake job-1" in str(info.value)
    assert sum(clock.sleeps) <= 60.0  # never sleeps past the deadline


@pytest.mark.parametrize(
    ("kind", "error"),
    [("content_policy", ContentPolicyError), ("validation", ProviderValidationError), ("job_failed", JobFailedError)],
)
def test_failed_states_raise_the_canonical_error(clock: FakeClock, tmp_path: Path, kind: str, error: type) -> None:
    FakeProvider.script = [Failed("job-1", "fake", JobError("refused", code="1301", kind=kind))]  # type: ignore[arg-type]
    client = make_client(clock, tmp_path)
    with pytest.raises(error) as info:
        asyncio.run(client.edit(client.request(URL, "x")))
    assert "refused" in str(info.value)


def test_same_client_key_submits_once(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    request = client.request(URL, "x", client_key="job-42")
    first = asyncio.run(client.submit(request))
    # A new client over the same journal (a restarted process) does not post again either.
    again = asyncio.run(make_client(clock, tmp_path).submit(request))
    assert first == again and len(FakeProvider.submits) == 1
    with pytest.raises(ValidationError, match="client_key: 'job-42' was already used for a different request"):
        asyncio.run(client.submit(client.request(URL, "something else", client_key="job-42")))
    assert len(FakeProvider.submits) == 1


def test_an_ambiguous_submit_is_never_resubmitted_blindly(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    request = client.request(URL, "x", client_key="k-1")
    with pytest.raises(SubmitUncertainError, match="kling jobs resume k-1"):
        asyncio.run(client.submit(request, provider="losing"))
    # The host knows the job under our key: the retry finds it by a read, with no second submit.
    LosingFake.known = {"k-1": JobHandle(provider="losing", job_id="found-7", client_key="k-1")}
    handle = asyncio.run(client.submit(request, provider="losing"))
    assert handle.job_id == "found-7" and len(FakeProvider.submits) == 1 and LosingFake.lookups == ["k-1"]
    # And the job log now holds it: a third call neither reads nor posts.
    assert asyncio.run(client.submit(request, provider="losing")).job_id == "found-7"
    assert LosingFake.lookups == ["k-1"]


def test_an_ambiguous_submit_the_host_never_saw_is_sent_again(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    request = client.request(URL, "x", client_key="k-2")
    LosingFake.known = {}
    with pytest.raises(SubmitUncertainError):
        asyncio.run(client.submit(request, provider="losing"))
    handle = asyncio.run(client.submit(request, provider="losing"))
    assert handle.job_id == "job-2" and len(FakeProvider.submits) == 2


# "bodyerror": an HTTP 200 whose body names a 503 (ErrorShape.body_status) is a 5xx too.
@pytest.mark.parametrize("provider", ["badgateway", "bodyerror"])
def test_a_5xx_answer_to_a_submit_is_not_resubmitted(clock: FakeClock, tmp_path: Path, provider: str) -> None:
    client = make_client(clock, tmp_path)
    request = client.request(URL, "x", client_key="k-5")
    with pytest.raises(ProviderError) as info:
        asyncio.run(client.submit(request, provider=provider))
    assert info.value.client_key == "k-5" and "NOT resubmitted (client key k-5)" in str(info.value)
    with pytest.raises(SubmitUncertainError, match="unknown outcome"):
        asyncio.run(client.submit(request, provider=provider))
    assert len(FakeProvider.submits) == 1


def test_without_a_lookup_an_ambiguous_submit_stays_refused(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    request = client.request(URL, "x", client_key="k-3")
    assert client.journal is not None
    canon = canonical(request, "fake")
    client.journal.claim(provider="fake", model=request.model, request=canon.stored(),
                         request_sha256=canon.request_sha256, client_key="k-3")
    client.journal.transition("k-3", "uncertain")
    with pytest.raises(SubmitUncertainError, match="unknown outcome") as info:
        asyncio.run(client.submit(request))
    assert FakeProvider.submits == []
    # The message gives the exact commands that settle it.
    text = str(info.value)
    assert "kling jobs show k-3" in text and "kling jobs resume k-3 --job-id ID" in text
    assert "kling jobs forget k-3 --force" in text


def test_every_capability_problem_is_listed_before_any_call(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    request = client.request(
        URL, "x", images=[URL] * 3, aspect_ratio="16:9",
        elements=[{"frontal_image": URL, "reference_images": [URL]}] * 2,
    )
    with pytest.raises(UnsupportedError) as info:
        asyncio.run(client.submit(request))
    paths = {p.path for p in info.value.problems}
    assert paths == {"images", "aspect_ratio"}
    assert "5 references, at most 4" in str(info.value)
    assert FakeProvider.submits == []


def test_local_files_on_a_url_only_provider_say_how_to_fix(clock: FakeClock, tmp_path: Path) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(b"x")
    client = make_client(clock, tmp_path)
    with pytest.raises(UnsupportedError, match="video: this provider takes http\\(s\\) URLs only"):
        client.check(client.request(str(video), "x"))


def test_missing_references_and_files_are_validation_errors(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    with pytest.raises(ValidationError) as info:
        client.check(client.request(str(tmp_path / "nope.mp4"), "use @Image3", images=[URL, URL]))
    text = str(info.value)
    assert "prompt: @Image3 refers to a image the request does not contain (2 images given)" in text or \
        "prompt: @Image3" in text
    assert "video: file not found" in text


def test_missing_key_names_the_variable(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path)
    with pytest.raises(MissingKeyError, match="set the environment variable FAKE_TEST_KEY"):
        client.provider("keyed")


def test_config_defaults_layer_under_explicit_values(clock: FakeClock, tmp_path: Path) -> None:
    client = make_client(clock, tmp_path, defaults={"quality": "std", "keep_audio": True},
                         providers={"fake": {"defaults": {"model": "kling-o3"}}})
    request = client.request(URL, "x")
    assert (request.quality, request.keep_audio, request.model) == ("std", True, "kling-o3")
    assert client.request(URL, "x", quality="pro").quality == "pro"


def test_sync_client_runs_the_same_job_even_inside_a_running_loop(tmp_path: Path) -> None:
    host = PluginHost(entrypoints=False, plugins=[("fake", FakePlugin())])

    async def nap(_: float) -> None:
        return None

    async def inside_loop() -> str:
        with EditClient(provider="fake", config=config_from_document({}), host=host, sleep=nap,
                        journal=JobLog(tmp_path)) as client:
            return client.edit(client.request(URL, "x")).job_id

    assert asyncio.run(inside_loop()) == "job-1"


def test_interrupt_on_a_host_that_cannot_cancel_prints_how_to_resume(
    clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kling_core.cli.job_cmd import _interrupted

    client = make_client(clock, tmp_path)
    handle = JobHandle(provider="losing", job_id="job-9")
    assert asyncio.run(_interrupted(client, handle, "losing", "k-9")) == 130
    err = capsys.readouterr().err
    assert "kling status losing job-9" in err and "kling result losing job-9 -o OUT.mp4" in err
    # Interrupted before the host answered: no job id to give, and nothing resubmitted.
    assert asyncio.run(_interrupted(client, None, "losing", "k-9")) == 130
    assert "client key k-9" in capsys.readouterr().err


def test_an_unknown_keyword_is_a_type_error_at_run_time_too() -> None:
    """The keywords are typed through TypedDicts; a misspelt one still fails without a type checker."""
    import kling_core

    with pytest.raises(TypeError, match="unexpected keyword argument 'provder'"):
        EditClient(provder="mock")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        AsyncEditClient(foo=1)  # type: ignore[call-arg]
    with EditClient(provider="mock", use_journal=False) as client:
        with pytest.raises(TypeError, match="unexpected keyword argument 'qualty'"):
            client.request("a.mp4", "x", qualty="pro")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="unexpected keyword argument 'ouptut'"):
            client.edit(client.request("a.mp4", "x"), ouptut="o.mp4")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'ouptut'"):
        kling_core.edit("a.mp4", "x", ouptut="o.mp4")  # type: ignore[call-arg]


def test_a_falsy_sleep_or_clock_given_is_still_used(tmp_path: Path) -> None:
    # A recorder that is also an (empty, so falsy) list must not be swapped for asyncio.sleep.
    class Recorder(list[float]):
        async def __call__(self, seconds: float) -> None:
            self.append(seconds)

    class ZeroClock(float):
        def __call__(self) -> float:
            return 0.0

    sleep, clock = Recorder(), ZeroClock()
    assert not sleep and not clock
    host = PluginHost(entrypoints=False, plugins=[("fake", FakePlugin())])
    client = AsyncEditClient(provider="fake", config=config_from_document({}), host=host, sleep=sleep,
                             clock=clock, journal=JobLog(tmp_path))
    assert client._sleep is sleep and client._clock is clock


def test_ctrl_c_while_saving_a_finished_job_does_not_cancel_it(clock: FakeClock, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from kling_core.cli.job_cmd import INTERRUPTED, _interrupted

    client = make_client(clock, tmp_path)

    async def go() -> int:
        started = await client.start(client.request(URL, "x", client_key="k-done"))
        await client.wait(started.handle)  # succeeded: the result is in the log, the save is next
        return await _interrupted(client, started.handle, "fake", "k-done")

    assert asyncio.run(go()) == INTERRUPTED
    assert FakeProvider.cancels == []  # a finished, paid job is never cancelled on the way out
    record = client.journal.get("k-done") if client.journal is not None else None
    assert record is not None and record.state == "succeeded"
    assert "kling jobs resume k-done" in capsys.readouterr().err
