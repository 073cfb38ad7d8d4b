"""The one submit of a job, and its outcome written to the job log before anything else happens."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kling_core.client.reword import reword
from kling_core.contract.models import EditRequest
from kling_core.errors import KlingError, ProviderError, SubmitUncertainError
from kling_core.joblog import JobLog
from kling_core.joblog.hints import resume_command, uncertain_hint
from kling_core.provider import JobHandle, Provider

log = logging.getLogger(__name__)


async def send(journal: JobLog | None, prov: Provider, prepared: EditRequest, key: str,
               clock: Callable[[], float], *, logged: Mapping[str, Any] | None = None) -> JobHandle:
    """Submit ``prepared`` under client key ``key``; an unsure outcome is logged ``uncertain``.

    ``logged``: more job-log fields written with ``submitted`` (one write instead of two).
    """
    try:
        handle = await prov.submit(prepared)
    except SubmitUncertainError as exc:
        if journal is not None:
            fields: dict[str, Any] = {"error": exc.reason}
            if exc.job_id:
                fields["job_id"] = exc.job_id  # never lose an id the host showed us
            journal.transition(key, "uncertain", detail=exc.reason, durable=True, **fields)
            message = exc.message.replace(f"; reconcile with client key {key}", "")
            reword(exc, f"{message}\n{_settle_hint(exc, key, prov)}")
        raise
    except ProviderError as exc:
        if may_have_made_a_job(exc):
            # The host took the request and then failed: a job may exist. Keep the claim
            # (a re-run reconciles or refuses) and say how to settle it.
            exc.client_key = key
            hint = ""
            if journal is not None:
                journal.transition(key, "uncertain", detail=exc.message, durable=True, error=exc.message,
                                   job_id=exc.job_id)
                hint = "\n" + _settle_hint(exc, key, prov)
            reword(exc, exc.message + f"; the job may exist: it was NOT resubmitted (client key {key}){hint}")
        elif journal is not None:
            journal.transition(key, "failed", detail="refused: no job was created", error=exc.message)
        raise
    except KlingError as exc:
        if journal is not None:
            journal.transition(key, "failed", detail="refused: no job was created", error=exc.message)
        raise
    except BaseException:
        # Interrupted mid-flight (Ctrl-C, cancellation, a bug): the POST may have landed.
        if journal is not None:
            journal.transition(key, "uncertain", detail="interrupted while submitting", durable=True)
        raise
    handle = attrs.evolve(
        handle,
        client_key=handle.client_key or key,
        submitted_at=handle.submitted_at if handle.submitted_at is not None else clock(),
        model=handle.model or prepared.model,
    )
    if journal is not None:
        journal.transition(key, "submitted", durable=True, handle=handle, error=None, **(logged or {}))
    log.info("submitted %s job %s (client key %s)", handle.provider, handle.job_id, key)
    return handle


def may_have_made_a_job(exc: ProviderError) -> bool:
    """Whether a submit's error leaves a job possibly on the host (never a refusal that frees the key):
    it names a job id, the host answered 2xx (it took the request: the error is in reading the
    answer), or it failed after taking it (5xx, 408; also as the status inside a 2xx body)."""
    if exc.job_id or (exc.status_code is not None and 200 <= exc.status_code < 300):
        return True
    status = exc.status_code if exc.status_code is not None else exc.body_status
    return status is not None and (status >= 500 or status == 408)


def _settle_hint(exc: ProviderError, key: str, prov: Provider) -> str:
    if exc.job_id:
        return f"the answer named job {exc.job_id}: the same command, or `{resume_command(key)}`, picks it up"
    return uncertain_hint(key, prov.name, can_reconcile=prov.capabilities.can_reconcile)
