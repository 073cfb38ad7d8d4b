"""How much work one client keeps in flight on one provider: two bounds.

- **Jobs** (``max_in_flight``): jobs submitted and not yet finished that one client runs at
  once on a provider through its single-job path (``edit``, and what builds on it). Hosts cap
  this (fal by account tier, Kling's error 1303 "parallel tasks over the resource pack
  limit"), so the default is the host's documented limit
  (``ProviderCapabilities.max_in_flight``), else :data:`DEFAULT_MAX_IN_FLIGHT`. A job holds
  its slot from before its submit until its result is saved or the wait ends; one past the
  bound waits before submitting, so nothing is sent that the host would refuse. Bare
  ``submit``/``wait`` calls take no job slot: a caller that submits everything before waiting
  on anything would otherwise wait forever. A host that refuses a submit at its own limit
  anyway (another process or machine uses the account; an ``ErrorRule`` with
  ``in_flight_limit``) proves a lower bound: :class:`HostLimit`.
- **Requests** (:func:`http_concurrency`): HTTP requests one provider's API client sends at
  once (submit, status, result, cancel). This is what keeps the event loop and the connection
  pool small whatever the number of jobs: a job waiting between polls holds no request slot,
  and one past the bound waits in a FIFO queue *before* the pool, so httpx's pool never holds
  thousands of waiting requests. The pool is sized to the bound, so a request that has its
  slot finds a connection. A status stream, which waits on the host as long as its job runs,
  takes no request slot but one of ``STATUS_STREAMS`` connections of its own (past those, a
  job polls). Result downloads have their own bound on the shared download
  client (:mod:`kling_core.media.fetch`), so a long download never delays a poll.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from kling_core.contract.capabilities import ProviderCapabilities
from kling_core.settings import ProviderSettings

# Jobs in flight per provider when neither the config nor the host's documentation names a
# number: enough to keep a batch busy, few enough that polling them stays polite (100 jobs
# polled every 20 s is 5 requests a second).
DEFAULT_MAX_IN_FLIGHT = 100
# Requests in flight per provider (and connections in its pool): at least MIN_REQUESTS so a
# cancel or a look-up never waits behind the polls of a tiny job bound, at most MAX_REQUESTS:
# on loopback one connection answers about a thousand polls a second, and 64 of them over a
# 100 ms round trip still carry 640 a second (10,000 jobs polled every 20 s need 500).
MIN_REQUESTS = 8
MAX_REQUESTS = 64
# Status streams (server-sent events, kling_core.http.stream) one provider keeps open at once.
# A stream waits on the host for the whole job, so it holds a connection of its own, never a
# request slot; a job past this number polls instead of streaming.
STATUS_STREAMS = 32


def max_in_flight(settings: ProviderSettings, capabilities: ProviderCapabilities) -> int:
    """The job bound: the config's ``max_in_flight``, else the host's documented one, else the default."""
    if settings.max_in_flight is not None:
        return int(settings.max_in_flight)
    if capabilities.max_in_flight is not None:
        return int(capabilities.max_in_flight)
    return DEFAULT_MAX_IN_FLIGHT


def http_concurrency(jobs: int) -> int:
    """Requests one provider sends at once for a job bound of ``jobs`` (each job sends one at a time)."""
    return max(MIN_REQUESTS, min(MAX_REQUESTS, jobs))


class LoopBound:
    """At most ``size`` holders at once on whichever event loop is running; waiters are served
    in order, ``urgent`` ones first.

    Urgent work is what starts or ends a job (a submit, a result): with thousands of jobs
    polling, a submit queued behind every poll would start its job's clock late while the
    polls only learn that jobs are still running. A poll that waits longer simply comes later.
    The waiters belong to one loop; a client used from a second loop (successive
    ``asyncio.run`` calls) starts afresh there.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.held = 0  # slots taken now, on the current loop
        self.most = 0  # the most ever taken at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    def _on_this_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self.held = loop, 0
            self._urgent, self._normal = collections.deque(), collections.deque()
        return loop

    def _take(self) -> None:
        self.held += 1
        self.most = max(self.most, self.held)

    async def acquire(self, *, urgent: bool = False) -> None:
        loop = self._on_this_loop()
        if self.held < self.size and not self._urgent and not self._normal:
            self._take()
            return
        waiter: asyncio.Future[None] = loop.create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter  # a release hands its slot over: held already counts this one
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over, then cancelled before it could run: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may have dropped it already
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not loop:  # a slot of an ended loop is gone with it
            return
        self.held -= 1
        while self.held < self.size and (self._urgent or self._normal):
            waiter = (self._urgent or self._normal).popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def slot(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()


class HostLimit:
    """What one client knows of a host's own cap on jobs in flight (Kling's error 1303).

    ``jobs``: the jobs this client submitted or picked up there and has not seen end (a wait
    ended). After a concurrency refusal, ``bound`` is the number of them then in flight (at least
    1) and stays for the client's life; submits past it wait here, in order, until one ends. A
    refusal made no job, so resubmitting after the wait is safe. Without a refusal nothing waits.
    """

    def __init__(self) -> None:
        self.bound: int | None = None
        self.jobs: set[tuple[str, str]] = set()  # (provider, job id)
        self.pending = 0  # submits let through, not settled yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def _full(self) -> bool:
        return self.bound is not None and len(self.jobs) + self.pending >= self.bound

    async def turn(self) -> None:
        """Wait until a submit fits under the bound (at once when there is none), behind any
        submit already waiting; it holds its place until :meth:`settle`."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # waiters belong to one loop (see LoopBound)
            self._loop, self.pending, self._waiters = loop, 0, collections.deque()
        if not self._full() and not self._waiters:
            self.pending += 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the waker counted this submit in ``pending``
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.settle()  # woken, then cancelled before it could run: pass the turn on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def settle(self) -> None:
        """A submit let through by :meth:`turn` is over; :meth:`add` its job first, or the freed
        turn would let one more through."""
        self.pending = max(0, self.pending - 1)
        self._wake()

    def add(self, job: tuple[str, str]) -> None:
        """A job this client now has on the host (submitted, or picked up)."""
        self.jobs.add(job)

    def ended(self, job: tuple[str, str]) -> None:
        """A job's wait ended (finished, failed, or given up): its slot on the host is free."""
        if job in self.jobs:
            self.jobs.discard(job)
            self._wake()

    def lower(self) -> int:
        """A concurrency refusal: the bound becomes the jobs in flight now (at least 1), never higher."""
        now = max(1, len(self.jobs))
        self.bound = now if self.bound is None else min(self.bound, now)
        return self.bound

    def _wake(self) -> None:
        while self._waiters and not self._full():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.pending += 1
                waiter.set_result(None)
