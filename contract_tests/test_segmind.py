"""The shipped provider contract suite, run against the Segmind plugin and its cassettes."""

from pathlib import Path

import kling_core_plugins.segmind

from kling_core.testing import ProviderContractTests


class TestSegmind(ProviderContractTests):
    provider_name = "segmind"
    provider_cls = kling_core_plugins.segmind.SegmindProvider
    cassette_dir = Path(kling_core_plugins.segmind.__file__).parent / "cassettes"
