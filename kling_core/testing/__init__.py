"""The provider contract test kit, shipped in the wheel for plugin authors.

The suite is a set of mixins in :mod:`kling_core.testing.suite`, composed as
``HttpProviderContractTests`` (HTTP providers) and ``LocalProviderContractTests`` (the mock
and other providers without HTTP); ``ProviderContractTests`` picks one of the two for the
provider it names. Cassettes are loaded, replayed, recorded and scanned by the modules
alongside. Needs the ``test`` extra: ``pip install kling-core[test]``.
"""

from kling_core.testing.cassettes import Cassette, load_cassette, load_cassettes
from kling_core.testing.contract import ProviderContractTests
from kling_core.testing.media import SampleMedia, render_sample_media
from kling_core.testing.replay import ContractFailure, ReplayOutcome, replay
from kling_core.testing.secrets import assert_no_secrets, scan_file
from kling_core.testing.suite import (
    BehaviourTests,
    ErrorCase,
    HttpBehaviourTests,
    HttpPropertyTests,
    HttpProviderContractTests,
    LocalBehaviourTests,
    LocalProviderContractTests,
    RequestPropertyTests,
    WireTests,
)

__all__ = [
    "BehaviourTests",
    "Cassette",
    "ContractFailure",
    "ErrorCase",
    "HttpBehaviourTests",
    "HttpPropertyTests",
    "HttpProviderContractTests",
    "LocalBehaviourTests",
    "LocalProviderContractTests",
    "ProviderContractTests",
    "ReplayOutcome",
    "RequestPropertyTests",
    "SampleMedia",
    "WireTests",
    "assert_no_secrets",
    "load_cassette",
    "load_cassettes",
    "render_sample_media",
    "replay",
    "scan_file",
]
