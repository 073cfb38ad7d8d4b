"""The blocking client's private loop (Portal) closes the way ``asyncio.run`` does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from kling_core.client.sync import Portal


def test_close_cancels_pending_tasks_and_finishes_async_generators() -> None:
    portal = Portal()
    unwound: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            unwound.append("task")

    async def numbers() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            unwound.append("generator")

    async def leave_work_behind() -> tuple[asyncio.Task[None], AsyncGenerator[int, None]]:
        task = asyncio.get_running_loop().create_task(forever())
        agen = numbers()
        await agen.__anext__()  # suspended inside its try: only aclose/shutdown_asyncgens runs its finally
        await asyncio.sleep(0)  # the task starts and waits
        return task, agen

    task, _agen = portal.run(leave_work_behind())  # held, so only the close can finish it
    portal.close()

    assert task.cancelled()
    assert sorted(unwound) == ["generator", "task"]
    assert portal.loop.is_closed()
    portal.close()  # a second close is harmless
