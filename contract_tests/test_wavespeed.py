"""The shipped provider contract suite, run against the WaveSpeed plugin and its cassettes."""

from pathlib import Path

import kling_core_plugins.wavespeed

from kling_core.testing import ProviderContractTests


class TestWaveSpeed(ProviderContractTests):
    provider_name = "wavespeed"
    provider_cls = kling_core_plugins.wavespeed.WaveSpeedProvider
    cassette_dir = Path(kling_core_plugins.wavespeed.__file__).parent / "cassettes"
    # Every documented failure family has a scenario; losing one fails the suite.
    required_outcomes = (
        "succeeded",
        "failed",
        "completed_with_error",
        "AuthenticationError",
        "RateLimitedError",
        "ProviderValidationError",
        "InsufficientCreditsError",
        "ProviderError",
        "SubmitUncertainError",
    )
