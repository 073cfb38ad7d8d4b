"""The shipped provider contract suite, run against the fal.ai plugin and its cassettes."""

from pathlib import Path

import kling_fal

from kling_core.testing import ProviderContractTests


class TestFal(ProviderContractTests):
    provider_name = "fal"
    provider_cls = kling_fal.FalProvider
    cassette_dir = Path(kling_fal.__file__).parent / "cassettes"
