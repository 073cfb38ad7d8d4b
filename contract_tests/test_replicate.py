"""The shipped provider contract suite, run against the Replicate plugin and its cassettes."""

from pathlib import Path

import kling_core_plugins.replicate

from kling_core.testing import ProviderContractTests


class TestReplicate(ProviderContractTests):
    provider_name = "replicate"
    provider_cls = kling_core_plugins.replicate.ReplicateProvider
    cassette_dir = Path(kling_core_plugins.replicate.__file__).parent / "cassettes"
    sample_job_id = "gm3qorzdhgbfurvjtvhg6dckhu"
    # Every documented failure family has a scenario; losing one fails the suite. A
    # prediction has no "done with an error" state (succeeded never carries an error).
    required_outcomes = (
        "succeeded",
        "failed",
        "cancel",
        "AuthenticationError",
        "RateLimitedError",
        "ProviderValidationError",
        "InsufficientCreditsError",
        "ProviderError",
        "SubmitUncertainError",
    )
