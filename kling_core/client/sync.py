"""``EditClient``: the async client, blocking. Its coroutines run on a private event loop
thread (a portal), so it also works where a loop is already running (notebooks)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from kling_core.client.aio import AsyncEditClient
from kling_core.client.base import CLIENT_OPTIONS, ClientOptions, unexpected_keywords
from kling_core.errors import ValidationError

P = ParamSpec("P")
T = TypeVar("T")

# Seconds a call interrupted in this thread (Ctrl-C) may take to unwind on the loop. Longer than
# a batch's SUBMIT_GRACE (10 s), which lets a submit already on the wire log its job id.
STOP_GRACE = 15.0


class Portal:
    """A private event loop on a daemon thread: sync calls run coroutines there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kling-portal", daemon=True)
        self.thread.start()
        self.closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it. An exception raised in this thread meanwhile
        (Ctrl-C's KeyboardInterrupt) cancels the coroutine too, waits for it to unwind, and is
        re-raised: the call must not go on (and submit a paid job) after its caller gave up."""
        try:
            self._check_caller()
        except ValidationError:
            coro.close()  # never started: no "coroutine was never awaited" warning
            raise
        ended = threading.Event()
        tasks: list[asyncio.Task[T]] = []

        def begin() -> None:
            task = self.loop.create_task(coro)
            task.add_done_callback(lambda _: ended.set())
            tasks.append(task)

        self.loop.call_soon_threadsafe(begin)
        try:
            ended.wait()
        except BaseException:
            # The loop runs callbacks in the order given, so the task exists when this one runs.
            self.loop.call_soon_threadsafe(lambda: tasks[0].cancel())
            ended.wait(STOP_GRACE)
            raise
        return tasks[0].result()

    def _check_caller(self) -> None:
        if self.closed:
            raise ValidationError.single("client", "this client is closed; make a new one", subject="call")
        if threading.get_ident() == self.thread.ident:
            # A callback (on_submit, on_status) runs on this loop: blocking it to wait for the loop
            # would wait forever.
            raise ValidationError.single(
                "client", "a blocking client call from inside one of its callbacks (on_submit, on_status) "
                "would wait forever for itself; use the async client there (client.aio, scheduling its "
                "coroutine on the running loop)", subject="call")

    def close(self) -> None:
        """Cancel what is still on the loop and let it unwind, as ``asyncio.run`` does, then close it:
        a task left pending would be destroyed with the loop ("Task was destroyed but it is pending").
        A second close does nothing."""
        if self.closed:
            return
        self._check_caller()
        try:
            self.run(_wind_down())
        finally:
            self.closed = True
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


async def _wind_down() -> None:
    """Cancel every other task on this loop, wait for their cancellation, finish async generators."""
    me = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not me]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def blocking(fn: Callable[P, Coroutine[Any, Any, T]], *, name: str, doc: str) -> Callable[P, T]:
    """``fn`` as a blocking function ``name``: each call runs on a portal of its own, closed when it ends."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        portal = Portal()
        try:
            return portal.run(fn(*args, **kwargs))
        finally:
            portal.close()

    functools.update_wrapper(run, fn)
    run.__name__ = run.__qualname__ = name
    run.__doc__ = doc
    return run


def _runs(method: Callable[Concatenate[AsyncEditClient, P], Coroutine[Any, Any, T]]
          ) -> Callable[Concatenate[EditClient, P], T]:
    """The async client's coroutine method, run to its end on this client's portal."""

    def run(self: EditClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._portal.run(method(self._async, *args, **kwargs))

    return _named(run, method)


def _calls(method: Callable[Concatenate[AsyncEditClient, P], T]) -> Callable[Concatenate[EditClient, P], T]:
    """The async client's plain method (it needs no loop), called on this thread."""

    def call(self: EditClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return method(self._async, *args, **kwargs)

    return _named(call, method)


def _named(delegate: Callable[..., T], method: Callable[..., Any]) -> Callable[..., T]:
    """``delegate`` with ``method``'s name, docs and signature, as a method of EditClient."""
    functools.update_wrapper(delegate, method)
    delegate.__qualname__ = f"EditClient.{method.__name__}"
    return delegate


class EditClient:
    """The same client, blocking. Each method runs the async one; no logic is duplicated."""

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        """The same keywords as :class:`AsyncEditClient` (typed, so a type checker sees a typo)."""
        unexpected_keywords("EditClient", options, CLIENT_OPTIONS)
        self._portal = Portal()
        try:
            # Built inside the portal's loop, where all its coroutines run.
            self._async: AsyncEditClient = self._portal.run(_make_async(options))
        except BaseException:
            self._portal.close()  # or its thread would outlive the failed constructor
            raise

    def __repr__(self) -> str:
        return f"<EditClient provider={self._async.default_provider!r}>"

    @property
    def aio(self) -> AsyncEditClient:
        return self._async

    request = _calls(AsyncEditClient.request)
    check = _calls(AsyncEditClient.check)
    handle = _calls(AsyncEditClient.handle)
    pending = _calls(AsyncEditClient.pending)
    jobs = _calls(AsyncEditClient.jobs)
    job = _calls(AsyncEditClient.job)
    forget = _calls(AsyncEditClient.forget)
    in_flight_limit = _calls(AsyncEditClient.in_flight_limit)
    wake = _calls(AsyncEditClient.wake)  # thread-safe: a receiver's thread wakes a blocked wait
    push_receiver = _calls(AsyncEditClient.push_receiver)
    submit = _runs(AsyncEditClient.submit)
    start = _runs(AsyncEditClient.start)
    status = _runs(AsyncEditClient.status)
    wait = _runs(AsyncEditClient.wait)
    result = wait  # an alias: the same call
    cancel = _runs(AsyncEditClient.cancel)
    save = _runs(AsyncEditClient.save)
    edit = _runs(AsyncEditClient.edit)
    resume = _runs(AsyncEditClient.resume)

    def close(self) -> None:
        """Close the providers (and the job log the client opened) and the loop; a second close
        does nothing, a call after it is a ValidationError."""
        if self._portal.closed:
            return
        try:
            self._portal.run(self._async.aclose())
        finally:
            self._portal.close()

    def __enter__(self) -> EditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make_async(options: ClientOptions) -> AsyncEditClient:
    return AsyncEditClient(**options)
