"""The shipped provider contract suite, run against the Unifically plugin and its cassettes."""

from pathlib import Path

import kling_core_plugins.unifically

from kling_core.testing import ProviderContractTests


class TestUnifically(ProviderContractTests):
    provider_name = "unifically"
    provider_cls = kling_core_plugins.unifically.UnificallyProvider
    cassette_dir = Path(kling_core_plugins.unifically.__file__).parent / "cassettes"
    # Every documented failure family has a scenario; losing one fails the suite.
    required_outcomes = (
        "succeeded",
        "failed",
        "AuthenticationError",
        "RateLimitedError",
        "ProviderValidationError",
        "ProviderError",
        "SubmitUncertainError",
    )
