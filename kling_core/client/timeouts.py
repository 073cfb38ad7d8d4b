"""The one check for a caller's ``timeout``: how long a wait may last."""

from __future__ import annotations

import math

from kling_core.errors import ValidationError

MAX_TIMEOUT = 7 * 86400.0


def check_timeout(timeout: float | None, *, field: str = "timeout") -> float | None:
    """None, or a finite number of seconds in (0, 7 days]; else a ValidationError naming ``field``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ValidationError.single(field, f"{timeout!r} is not a number of seconds")
    if not math.isfinite(timeout) or timeout <= 0 or timeout > MAX_TIMEOUT:
        raise ValidationError.single(field, f"{timeout!r} must be more than 0 and at most {MAX_TIMEOUT:.0f} s (7 days)")
    return float(timeout)
