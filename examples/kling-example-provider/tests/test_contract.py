"""The kling-core contract suite, run against this plugin: that is the whole test module."""

from __future__ import annotations

from kling_core.testing import ProviderContractTests

from kling_example import ExampleProvider


class TestExampleContract(ProviderContractTests):
    provider_name = "example"
    cassette_dir = ExampleProvider.cassette_dir
