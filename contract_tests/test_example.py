"""The worked third-party example (examples/kling-example-provider) runs the full suite here too."""

from __future__ import annotations

import pytest

kling_example = pytest.importorskip(
    "kling_example", reason="install the example plugin: pip install -e examples/kling-example-provider"
)

from kling_core.testing import ProviderContractTests  # noqa: E402


class TestExampleContract(ProviderContractTests):
    provider_name = "example"
    cassette_dir = kling_example.ExampleProvider.cassette_dir
