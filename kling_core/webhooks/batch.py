"""``kling batch --webhooks``: a batch's jobs report back to an in-process receiver.

Each line without its own ``webhook_url``, on one provider (not a fallback list) whose host
takes a per-job webhook and whose callbacks the receiver reads, is given the receiver's URL
for its provider and client key, so its callback is matched by both. The webhook URL is not
part of a job's identity: a re-run picks up the same jobs. The waits keep a sparse poll as a
safety net; a confirmed callback wakes them at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from kling_core.webhooks.receiver import callback_shape
from kling_core.webhooks.server import RunningReceiver

if TYPE_CHECKING:
    from kling_core.batches.plan import BatchPlan
    from kling_core.client import AsyncEditClient


def takes_callbacks(client: AsyncEditClient, provider: str) -> bool:
    cls = client.host.providers.get(provider)
    if cls is None or not cls.capabilities.accepts_webhook:
        return False
    return callback_shape(cls) is not None


def with_webhooks(plan: BatchPlan, running: RunningReceiver, client: AsyncEditClient) -> tuple[BatchPlan, int]:
    """The plan with the receiver's URL on every line it can serve, and how many lines got one."""
    lines = []
    count = 0
    for line in plan.lines:
        if line.request.webhook_url is None and "," not in line.provider and takes_callbacks(client, line.provider):
            url = running.url_for(line.provider, line.client_key)
            line = attrs.evolve(line, request=attrs.evolve(line.request, webhook_url=url))
            count += 1
        lines.append(line)
    return attrs.evolve(plan, lines=tuple(lines)), count
