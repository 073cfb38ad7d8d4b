"""The shipped provider contract suite, run against the fal.ai plugin and its cassettes."""

from pathlib import Path

import kling_core_plugins.fal

from kling_core.testing import ProviderContractTests


class TestFal(ProviderContractTests):
    provider_name = "fal"
    provider_cls = kling_core_plugins.fal.FalProvider
    cassette_dir = Path(kling_core_plugins.fal.__file__).parent / "cassettes"
