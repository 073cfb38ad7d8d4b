"""``abatch``/``batch``: a manifest's edits from Python, results yielded as they finish."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

from kling_core.batches.manifest import read_manifest
from kling_core.batches.plan import BatchPlan, plan_lines
from kling_core.batches.results import BatchLineResult
from kling_core.batches.runner import DEFAULT_CONCURRENCY, BatchEvents, check_concurrency, run_plan
from kling_core.client.aio import AsyncEditClient
from kling_core.client.sync import EditClient, Portal
from kling_core.client.timeouts import check_timeout
from kling_core.config import KlingConfig

PathArg = str | os.PathLike[str]


def load_plan(client: AsyncEditClient, manifest: PathArg, *, fmt: str | None = None,
              output_dir: PathArg | None = None, provider: str | None = None) -> BatchPlan:
    """Read and check a whole manifest (ValidationError listing every bad line; nothing submitted)."""
    path = Path(manifest)
    lines, problems = read_manifest(path, fmt=fmt)
    return plan_lines(client, lines, manifest=path, output_dir=Path(output_dir) if output_dir is not None else None,
                      provider=provider, problems=problems)


async def abatch(manifest: PathArg, *, provider: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 fail_fast: bool = False, output_dir: PathArg | None = None, format: str | None = None,
                 timeout: float | None = None, client: AsyncEditClient | None = None,
                 config: KlingConfig | None = None, events: BatchEvents | None = None
                 ) -> AsyncGenerator[BatchLineResult, None]:
    """Run every edit of a JSONL or CSV manifest; yield each line's result as it finishes.

    Every line is checked first: one bad line and a ValidationError lists every problem
    (``line N, FIELD: reason``) before anything is submitted. Lines an earlier run finished
    are yielded first (``action="skipped"``); the others run ``concurrency`` at a time (and at
    most each provider's ``in_flight_limit`` at once), each submitted at most once: running
    the same manifest again picks up what is unfinished. ``provider`` is the default for lines
    without one; ``output_dir`` holds the outputs of lines without ``output`` (default: a folder
    ``<manifest stem>-outputs`` beside the manifest); ``fail_fast`` stops at the first failed
    line (the rest come back ``not_run``); ``timeout`` bounds each job's wait.
    """
    check_concurrency(concurrency)
    check_timeout(timeout)
    own = client is None
    active = client if client is not None else AsyncEditClient(provider=provider, config=config)
    try:
        plan = load_plan(active, manifest, fmt=format, output_dir=output_dir, provider=provider)
        # aclosing: when the caller stops early, run_plan's own clean-up (its workers stopped, a
        # submit on the wire given its grace) runs now, before the client closes, not at GC.
        async with contextlib.aclosing(run_plan(active, plan, concurrency=concurrency, fail_fast=fail_fast,
                                                events=events, timeout=timeout)) as results:
            async for result in results:
                yield result
    finally:
        if own:
            await active.aclose()


def batch(manifest: PathArg, *, provider: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
          fail_fast: bool = False, output_dir: PathArg | None = None, format: str | None = None,
          timeout: float | None = None, client: EditClient | None = None,
          config: KlingConfig | None = None) -> Iterator[BatchLineResult]:
    """Blocking :func:`abatch`: ``for result in kling_core.batch("edits.jsonl"): ...``.

    The jobs run on a private event loop thread (the client's, when one is given), so this
    also works where a loop is already running. Leaving the loop early stops the batch: no
    new line is submitted, and the jobs started stay in the job log for the next run.
    """
    portal = client._portal if client is not None else Portal()
    agen: AsyncGenerator[BatchLineResult, None] = abatch(manifest, provider=provider, concurrency=concurrency, fail_fast=fail_fast, output_dir=output_dir,
                  format=format, timeout=timeout, client=client.aio if client is not None else None, config=config)
    try:
        while True:
            try:
                # Ctrl-C here cancels this step on the loop and waits for it to unwind (Portal.run),
                # so the generator is no longer running when it is closed below.
                result = portal.run(_next(agen))
            except StopAsyncIteration:
                return
            yield result
    except BaseException as exc:
        # The exception in flight (Ctrl-C, or the caller leaving the loop early) is the one to see:
        # a clean-up failing after an interrupt must not replace it.
        try:
            portal.run(agen.aclose())
        except Exception:
            if isinstance(exc, GeneratorExit):
                raise
        raise
    finally:
        if client is None:
            # Closing cancels what is left on the loop (a provider's in-process work, such as
            # the mock's renders), so none is destroyed pending.
            portal.close()


async def _next(agen: AsyncGenerator[BatchLineResult, None]) -> BatchLineResult:
    return await agen.__anext__()
