"""Every test runs isolated from the user's config, journal and caches."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Budgets set on purpose: thorough enough to find drift, small enough for 2-core CI. In CI the
# examples are fixed (derandomized) so a run is reproducible; locally they vary run to run, and
# KLING_HYPOTHESIS_PROFILE=deep explores a thousand per property.
_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "print_blob": True}
settings.register_profile("ci", max_examples=60, derandomize=True, database=None, **_common)
settings.register_profile("local", max_examples=60, **_common)
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("deep", max_examples=1000, **_common)
settings.load_profile(os.environ.get("KLING_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "local"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("KLING_STATE_DIR", str(state))
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("KLING_CONFIG_DIR", str(tmp_path_factory.mktemp("user-config")))  # no user config
    for var in ("KLING_CONFIG", "KLING_LOG", "KLING_PLUGINS", "FAL_KEY", "SEGMIND_API_KEY",
                "UNIFICALLY_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_FFMPEG"):
        monkeypatch.delenv(var, raising=False)


def _sendable(text: str) -> str:
    """``text`` as UTF-8 can carry it: a file name that is not UTF-8 reaches Python as lone
    surrogates, which xdist cannot send back from a worker (it ends the whole run)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections = [(title, _sendable(text)) for title, text in report.sections]
    if report.longrepr is not None and _sendable(str(report.longrepr)) != str(report.longrepr):
        report.longrepr = _sendable(str(report.longrepr))
    return None
