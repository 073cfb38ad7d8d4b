"""Backoff delays for polls and retries: pure arithmetic, no HTTP.

It lives outside :mod:`kling_core.http` so that following a local job (the mock) polls on the
same schedule without importing httpx or the HTTP machinery; ``kling_core.http.retry``
re-exports it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from kling_core.settings import PollSettings


def backoff_delays(poll: PollSettings, rng: random.Random | Callable[[], float] | None = None) -> Iterator[float]:
    """Endless delays: ``initial`` × ``factor``ⁿ capped at ``max``, each with ± ``jitter``.

    ``rng`` is a ``random.Random`` (or a 0..1 function) so tests get fixed sequences.
    """
    if isinstance(rng, random.Random):
        draw: Callable[[], float] = rng.random
    elif rng is None:
        draw = random.random
    else:
        draw = rng
    base = max(0.0, poll.initial)
    while True:
        capped = min(base, poll.max)
        spread = capped * poll.jitter
        yield max(0.0, min(poll.max, capped + (2 * draw() - 1) * spread))
        base = base * poll.factor if base < poll.max else base
