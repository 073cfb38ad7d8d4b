"""The behavioural checks the suite applies to any job's trail, and the error-class rules."""

from __future__ import annotations

from kling_core.contract.models import EditResult, OutputVideo
from kling_core.contract.status import Queued, Running, Succeeded
from kling_core.errors import AuthenticationError, ProviderError, RateLimitedError
from kling_core.provider import JobHandle
from kling_core.testing.judge import error_problems, lifecycle_problems

H = JobHandle(provider="p", job_id="j1", model="kling-o1")


def _done(job_id: str = "j1", provider: str = "p", model: str = "kling-o1", url: str = "https://x/y.mp4") -> Succeeded:
    return Succeeded(job_id, provider, EditResult(video=OutputVideo(url=url), job_id=job_id, provider=provider, model=model))


def test_a_clean_trail_has_no_problems() -> None:
    trail = [("submit", H, None), ("status", Queued("j1", "p", 1), None), ("status", Running("j1", "p", 50.0), None),
             ("status", _done(), None)]
    assert lifecycle_problems(trail, "p") == []


def test_each_lifecycle_problem_is_named() -> None:
    trail = [
        ("submit", H, None),
        ("status", Queued("j2", "p"), None),
        ("status", _done(model="o1", url=""), None),
        ("status", Running("j1", "other"), None),
        ("status", None, KeyError("output")),
    ]
    problems = lifecycle_problems(trail, "p")
    assert problems == [
        "step 2 (status): status.job_id 'j2' is not the handle's 'j1'",
        "step 3 (status): succeeded without a video URL",
        "step 3 (status): result.model 'o1' is not a canonical model (kling-o1, kling-o3)",
        "step 4 (status): a running status after the terminal succeeded",
        "step 4 (status): status.provider is 'other', expected 'p'",
        "step 5 (status): raised a non-canonical KeyError: 'output'",
    ]


def test_retryable_must_match_the_error_class() -> None:
    assert error_problems(RateLimitedError("slow down", provider="p", status_code=429), "p") == []
    assert error_problems(RateLimitedError("x", provider="p", retryable=False), "p") == [
        "RateLimitedError (HTTP None) has retryable=False, expected True"
    ]
    assert error_problems(AuthenticationError("x", provider="p", status_code=401, retryable=True), "p") == [
        "AuthenticationError (HTTP 401) has retryable=True, expected False"
    ]
    assert error_problems(ProviderError("x", provider="p", status_code=503, retryable=False), "p") == [
        "ProviderError (HTTP 503) has retryable=False, expected True"
    ]
    assert error_problems(ProviderError("x", provider="q", status_code=404), "p") == [
        "ProviderError.provider is 'q', expected 'p'"
    ]
