"""The job log: every job this machine submitted, in one SQLite file under the state dir.

- :mod:`.records` — :class:`JobRecord`, :class:`JobEvent`, the states;
- :mod:`.schema` — tables and connection set-up (WAL, busy timeout);
- :mod:`.store` — :class:`JobLog`, reads and writes;
- :mod:`.canonical` — the canonical request and the client key derived from it;
- :mod:`.migrate` — the one-time import of the old JSON journal;
- :mod:`.prune` — :func:`prune_cache` for the mock's renders and cached downloads.
"""

from typing import TYPE_CHECKING, Any

from kling_core.joblog.canonical import Canonical, base_key, canonical, take_key
from kling_core.joblog.records import (
    FINISHED,
    STATES,
    UNFINISHED,
    JobEvent,
    JobRecord,
    JobState,
    parse_age,
    parse_states,
)
from kling_core.joblog.store import DB_NAME, JobLog, owner_alive, state_dir
from kling_core.lazy import exporter

if TYPE_CHECKING:
    from kling_core.joblog.prune import PrunedEntry, PruneReport, prune_cache

# Pruning is for `kling jobs prune` and `kling cache`: an edit does not load it.
__getattr__: Any = exporter(__name__, {name: "kling_core.joblog.prune"
                                       for name in ("PrunedEntry", "PruneReport", "prune_cache")})

__all__ = [
    "DB_NAME",
    "FINISHED",
    "STATES",
    "UNFINISHED",
    "Canonical",
    "JobEvent",
    "JobLog",
    "JobRecord",
    "JobState",
    "PruneReport",
    "PrunedEntry",
    "base_key",
    "canonical",
    "owner_alive",
    "parse_age",
    "parse_states",
    "prune_cache",
    "state_dir",
    "take_key",
]
