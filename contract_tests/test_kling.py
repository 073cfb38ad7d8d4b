"""The shipped provider contract suite, run against the Kling official API plugin and its cassettes."""

from pathlib import Path

import kling_core_plugins.kling

from kling_core.testing import ProviderContractTests


class TestKling(ProviderContractTests):
    provider_name = "kling"
    provider_cls = kling_core_plugins.kling.KlingProvider
    cassette_dir = Path(kling_core_plugins.kling.__file__).parent / "cassettes"
    # Every documented failure family has a scenario; losing one fails the suite.
    required_outcomes = (
        "succeeded",
        "failed",
        "AuthenticationError",
        "RateLimitedError",
        "InsufficientCreditsError",
        "ContentPolicyError",
        "ProviderValidationError",
        "ProviderError",
    )
