"""The mock's options, from ``[providers.mock.options]`` and per request (``request.options``).

A request's value wins over the config's. Unknown names and bad values are refused with the
accepted ones listed: a typo in ``fail`` must not silently run a successful job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from kling_core.sdk import (
    ConfigError,
    Problem,
    ValidationError,
)
from kling_core_plugins.mock.failures import FAILURES

OPTION_NAMES: tuple[str, ...] = ("fail", "latency", "retry_after")
# Seconds: a mock job queued for an hour is a typo (and `1e999` would hang it for ever).
MAX_SECONDS = 3600.0


@attrs.frozen
class MockOptions:
    fail: str | None = None  # one of FAILURES, or None for a normal job
    latency: float = 0.0  # seconds a job stays queued before it runs
    retry_after: float = 5.0  # the Retry-After a scripted rate limit reports


def _problems(raw: Mapping[str, Any], prefix: str) -> tuple[dict[str, Any], list[Problem]]:
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in raw.items():
        path = f"{prefix}.{key}"
        if key not in OPTION_NAMES:
            problems.append(Problem(path, f"unknown option (accepted: {', '.join(OPTION_NAMES)})"))
        elif key == "fail":
            if value in (None, "", "none"):
                values["fail"] = None
            elif isinstance(value, str) and value in FAILURES:
                values["fail"] = value
            else:
                problems.append(Problem(path, f"{value!r} is not one of none, {', '.join(FAILURES)}"))
        else:
            seconds = _seconds(value)
            if seconds is None:
                problems.append(Problem(path, f"expected a number of seconds from 0 to {MAX_SECONDS:g}, got {_shown(value)}"))
            else:
                values[key] = seconds
    return values, problems


def _seconds(value: Any) -> float | None:
    """``value`` as seconds in [0, MAX_SECONDS]; None for anything else (inf, NaN, 1e999, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        return None
    return seconds


def _shown(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        return "an integer too large to use"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def config_options(raw: Mapping[str, Any]) -> MockOptions:
    values, problems = _problems(raw, "providers.mock.options")
    if len(problems) == 1:
        p = problems[0]
        raise ConfigError(p.message, key=p.path)
    if problems:  # every one listed, as ValidationError lists them
        raise ConfigError(str(ValidationError(problems, subject="mock options")))
    return MockOptions(**values)


def request_problems(raw: Mapping[str, Any]) -> list[Problem]:
    return _problems(raw, "options")[1]


def effective(base: MockOptions, raw: Mapping[str, Any]) -> MockOptions:
    """Config options overlaid with a request's; raise ValidationError naming ``options.X``."""
    values, problems = _problems(raw, "options")
    if problems:
        raise ValidationError(problems)
    return attrs.evolve(base, **values)
