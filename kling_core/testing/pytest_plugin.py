"""The kit's pytest plugin under its former name: the hooks and fixtures of :mod:`kling_core.pytest_entry`.

The ``pytest11`` entry point (``kling``) names :mod:`kling_core.pytest_entry`, which lives
outside this package so that loading it imports none of the kit. This module stays for
``-p kling_core.testing.pytest_plugin`` with plugin autoloading disabled; do not give both.
"""

from __future__ import annotations

from kling_core.pytest_entry import (
    _env_record,
    kling_call_log,
    kling_cassettes,
    kling_emulator,
    kling_mock_client,
    kling_provider_factory,
    kling_sample_media,
    pytest_addoption,
    pytest_configure,
)

__all__ = [
    "_env_record",
    "kling_call_log",
    "kling_cassettes",
    "kling_emulator",
    "kling_mock_client",
    "kling_provider_factory",
    "kling_sample_media",
    "pytest_addoption",
    "pytest_configure",
]
