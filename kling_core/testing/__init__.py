"""The provider contract test kit, shipped in the wheel for plugin authors.

``ProviderContractTests`` is the suite; cassettes are loaded, replayed, recorded and scanned by
the modules alongside. Needs the ``test`` extra: ``pip install kling-core[test]``.
"""

from kling_core.testing.cassettes import Cassette, load_cassette, load_cassettes
from kling_core.testing.contract import ErrorCase, ProviderContractTests
from kling_core.testing.media import SampleMedia, render_sample_media
from kling_core.testing.replay import ContractFailure, ReplayOutcome, replay
from kling_core.testing.secrets import assert_no_secrets, scan_file

__all__ = [
    "Cassette",
    "ContractFailure",
    "ErrorCase",
    "ProviderContractTests",
    "ReplayOutcome",
    "SampleMedia",
    "assert_no_secrets",
    "load_cassette",
    "load_cassettes",
    "render_sample_media",
    "replay",
    "scan_file",
]
