"""Batches: many edits from one manifest (``kling batch FILE``, ``kling_core.batch``/``abatch``).

- :mod:`.manifest` — reading JSONL/CSV lines and checking their fields' shapes;
- :mod:`.plan` — each line's request checked on its provider, its output and client key, and
  whether a run submits it, picks its job up or skips it (how lines are identified across runs);
- :mod:`.runner` — the bounded worker pool (each job in its provider's slots of the client);
- :mod:`.results` — :class:`BatchLineResult`, the results JSONL, the summary's counts;
- :mod:`.api` — ``abatch`` and its blocking ``batch``.

See docs/batch.md.
"""

from kling_core.batches.api import abatch, batch, load_plan
from kling_core.batches.plan import BatchPlan, PlannedLine
from kling_core.batches.results import BatchLineResult
from kling_core.batches.runner import DEFAULT_CONCURRENCY, BatchEvents

__all__ = [
    "DEFAULT_CONCURRENCY",
    "BatchEvents",
    "BatchLineResult",
    "BatchPlan",
    "PlannedLine",
    "abatch",
    "batch",
    "load_plan",
]
