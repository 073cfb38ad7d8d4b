"""pytest plugin (``pytest11`` entry point ``kling``): contract-suite options and fixtures."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "kling provider contract suite")
    group.addoption(
        "--kling-record",
        action="store_true",
        default=os.environ.get("KLING_RECORD", "") not in ("", "0"),
        help="record cassettes against the live host (needs a real key; never in CI)",
    )
