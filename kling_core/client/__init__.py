"""The Python API: one async implementation, and a thin sync facade over it.

``AsyncEditClient`` (:mod:`.aio`) checks a request against the chosen provider before any
network call, submits it at most once (claimed in the job log under its client key before the
submit goes out), polls with backoff to a deadline, and saves the result atomically. Without
an explicit client key the key is derived from the request, so running the same edit again
picks up its job instead of paying for a second one (see :mod:`kling_core.joblog`).
``EditClient`` (:mod:`.sync`) runs the same coroutines on a private event loop thread, so it
also works where a loop is already running (notebooks). :mod:`.oneshot` has ``edit``/``aedit``.
"""

from kling_core.client.aio import AsyncEditClient
from kling_core.client.base import StatusCallback
from kling_core.client.follow import CANCEL_WAIT
from kling_core.client.oneshot import aedit, edit
from kling_core.client.pickup import CLAIM_WAIT
from kling_core.client.submit import Started
from kling_core.client.sync import EditClient
from kling_core.client.timeouts import MAX_TIMEOUT, check_timeout

__all__ = [
    "CANCEL_WAIT",
    "CLAIM_WAIT",
    "MAX_TIMEOUT",
    "AsyncEditClient",
    "EditClient",
    "Started",
    "StatusCallback",
    "aedit",
    "check_timeout",
    "edit",
]
