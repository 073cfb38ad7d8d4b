"""The shipped provider contract suite, run against the Segmind plugin and its cassettes."""

from pathlib import Path

import kling_segmind

from kling_core.testing import ProviderContractTests


class TestSegmind(ProviderContractTests):
    provider_name = "segmind"
    provider_cls = kling_segmind.SegmindProvider
    cassette_dir = Path(kling_segmind.__file__).parent / "cassettes"
