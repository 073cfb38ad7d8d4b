"""``ProviderContractTests``: the suite for whichever provider a test module names.

A plugin's test module subclasses it and names its provider::

    class TestMine(ProviderContractTests):
        provider_name = "mine"

When the subclass is created, ``__init_subclass__`` looks at the provider class's ``is_http``
and adds :class:`~kling_core.testing.suite.HttpProviderContractTests` (behaviour from the
cassettes, wire, property) or :class:`~kling_core.testing.suite.LocalProviderContractTests`
(behaviour from real jobs on sample media, property) to its bases. Subclass one of those
directly to say which you mean, or compose the mixins in :mod:`kling_core.testing.suite`.
"""

from __future__ import annotations

from typing import Any

from kling_core.testing.suite import (
    ErrorCase,
    HttpProviderContractTests,
    LocalProviderContractTests,
    default_cassette_dir,
    resolve_installed,
)
from kling_core.testing.suite.base import SuiteBase

__all__ = ["ErrorCase", "ProviderContractTests", "default_cassette_dir", "resolve_installed"]
_COMPOSITIONS = (HttpProviderContractTests, LocalProviderContractTests)


class ProviderContractTests(SuiteBase):
    """Becomes the HTTP or the local composition, by the provider class's ``is_http``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        chosen = next((c for c in _COMPOSITIONS if issubclass(cls, c)), None)
        if "provider_cls" not in vars(cls) and "provider_name" not in vars(cls):
            return  # names no provider (an intermediate base): its subclasses will
        try:
            http = cls.kling_provider_cls().is_http
        except Exception:
            if chosen is not None:
                return
            http = True  # cannot load it: every test then fails saying why
        want = HttpProviderContractTests if http else LocalProviderContractTests
        if chosen is None:
            cls.__bases__ = (*cls.__bases__, want)
        elif chosen is not want:
            raise TypeError(
                f"{cls.__name__}: a base already runs {chosen.__name__}, but its provider "
                f"needs {want.__name__}; subclass that directly"
            )
