"""The provider contract suite, as mixins a plugin's test module composes.

Ready compositions (subclass one, set ``provider_name``)::

    HttpProviderContractTests  = HttpBehaviourTests + WireTests + HttpPropertyTests
    LocalProviderContractTests = LocalBehaviourTests + RequestPropertyTests

Or compose your own from the mixins, e.g. ``class TestMine(HttpBehaviourTests, WireTests)``
to leave out the property half. Each mixin's tests share a name prefix (``test_behaviour_``,
``test_wire_``, ``test_property_``) so ``kling contract`` reports them per half.
"""

from kling_core.testing.suite.base import CassetteSuite, SuiteBase, default_cassette_dir, resolve_installed
from kling_core.testing.suite.behaviour import BehaviourTests
from kling_core.testing.suite.behaviour_http import HttpBehaviourTests
from kling_core.testing.suite.behaviour_local import ErrorCase, LocalBehaviourTests
from kling_core.testing.suite.properties import HttpPropertyTests, RequestPropertyTests
from kling_core.testing.suite.wire import WireTests


class HttpProviderContractTests(HttpBehaviourTests, WireTests, HttpPropertyTests):
    """The whole suite for an HTTP provider: behaviour driven by its cassettes, the cassettes
    replayed strictly, and hypothesis against its builders and parsers."""


class LocalProviderContractTests(LocalBehaviourTests, RequestPropertyTests):
    """The suite for a provider without HTTP (the mock): real jobs on sample media, and
    out-of-bounds requests refused before any work."""


__all__ = [
    "BehaviourTests",
    "CassetteSuite",
    "ErrorCase",
    "HttpBehaviourTests",
    "HttpPropertyTests",
    "HttpProviderContractTests",
    "LocalBehaviourTests",
    "LocalProviderContractTests",
    "RequestPropertyTests",
    "SuiteBase",
    "WireTests",
    "default_cassette_dir",
    "resolve_installed",
]
