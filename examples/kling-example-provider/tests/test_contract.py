"""The kling-core contract suite, run against this plugin: that is the whole test module."""

from __future__ import annotations

from kling_example import ExampleProvider

from kling_core.testing import ProviderContractTests


class TestExampleContract(ProviderContractTests):
    provider_name = "example"
    cassette_dir = ExampleProvider.cassette_dir
