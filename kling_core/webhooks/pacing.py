"""Pacing the status look-ups that unsigned callbacks cause.

An unsigned callback (Kling, Unifically) proves nothing, so it is confirmed by a status GET;
anyone who knows an unfinished job's id could otherwise make the receiver send one GET per
callback. Per job, at most one such look-up starts per ``interval`` seconds. A callback inside
the interval is not dropped: it is folded into one look-up due when the interval ends, so a
completion announced right after another callback is still confirmed within ``interval``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("kling_core.webhooks")

PRUNE_AT = 1024  # entries kept before the ones whose interval has passed are dropped


class LookupPacer:
    """When each job's next confirming look-up may start; the deferred look-ups waiting for it."""

    def __init__(self, interval: float, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]]) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._started: dict[Hashable, float] = {}  # job -> when its last look-up started
        self._waiting: dict[Hashable, asyncio.Task[None]] = {}

    def admit(self, job: Hashable) -> bool:
        """True: a look-up for ``job`` may start now (and counts as started)."""
        now = self._clock()
        last = self._started.get(job)
        if self.interval > 0 and last is not None and now - last < self.interval:
            return False
        self._started[job] = now
        if len(self._started) > PRUNE_AT:
            self._started = {k: t for k, t in self._started.items() if now - t < self.interval}
        return True

    def defer(self, job: Hashable, look_up: Callable[[], Awaitable[None]]) -> bool:
        """Run ``look_up`` when ``job``'s interval ends; False when one is already waiting (it
        covers this callback too: it starts after it arrived)."""
        waiting = self._waiting.get(job)
        if waiting is not None and not waiting.done():
            return False
        self._waiting[job] = asyncio.ensure_future(self._later(job, look_up))
        return True

    async def _later(self, job: Hashable, look_up: Callable[[], Awaitable[None]]) -> None:
        last = self._started.get(job)
        if last is not None:
            await self._sleep(max(0.0, last + self.interval - self._clock()))
        self._started[job] = self._clock()
        # No longer waiting once started: a callback during this look-up may postdate its GET,
        # so it schedules the next one.
        self._waiting.pop(job, None)
        try:
            await look_up()
        except Exception:  # nobody awaits this task: say why it ended rather than lose it
            log.warning("a deferred confirming look-up failed", exc_info=True)

    def close(self) -> None:
        for task in self._waiting.values():
            if not task.done():
                task.cancel()
        self._waiting.clear()
