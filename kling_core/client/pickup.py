"""Which logged job a request maps to, and picking that job up instead of submitting again.

A job found in the log is picked up by its handle, by a job id the host showed, or by asking
the host for its client key (reconcile). A submit whose outcome cannot be settled is refused,
never guessed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import attrs

from kling_core.client.reword import reword
from kling_core.contract.models import EditRequest
from kling_core.errors import SubmitUncertainError, ValidationError
from kling_core.job_commands import jobs_command
from kling_core.joblog import UNFINISHED, JobLog, JobRecord, base_key, canonical, owner_alive
from kling_core.joblog.canonical import Canonical
from kling_core.joblog.hints import resume_command, uncertain_hint
from kling_core.joblog.migrate import LEGACY, legacy_request_hash
from kling_core.provider import JobHandle, Provider

log = logging.getLogger(__name__)
# How long a run waits for another process that is submitting the same job right now.
CLAIM_WAIT = 60.0


def identify(journal: JobLog, request: EditRequest, provider: str) -> tuple[Canonical, str | None]:
    """The canonical request and, without an explicit client key, the derived base key, on the
    host named ``provider``: a job is looked up without the host's credentials."""
    canon = canonical(request, provider)
    base = None if request.client_key else base_key(canon.identity, journal.salt())
    return canon, base


def lookup(journal: JobLog, request: EditRequest, base: str | None, *, new: bool) -> JobRecord | None:
    """The logged job this request maps to before any new claim (None: submit a new one)."""
    if request.client_key is not None:
        return journal.get(request.client_key)
    if new or base is None:
        return None
    latest = journal.latest(base)
    if latest is not None and (latest.state in UNFINISHED or not latest.created_on_host):
        return latest
    return None


@attrs.frozen
class Looked:
    """A request's identity on one host and the logged job it maps to, worked out once per job:
    the fallback look-up and the submit share it (hashing the request costs more than the
    look-up itself)."""

    request: EditRequest  # the request looked up (its client key decides the look-up)
    provider: str
    new: bool
    canon: Canonical
    base: str | None
    record: JobRecord | None

    def fits(self, request: EditRequest, provider: str, new: bool) -> bool:
        return (self.request is request or self.request == request) and self.provider == provider and self.new == new


def look(journal: JobLog, request: EditRequest, prov: Provider, *, new: bool) -> Looked:
    """:func:`identify` and :func:`lookup` together."""
    canon, base = identify(journal, request, prov.name)
    return Looked(request, prov.name, new, canon, base, lookup(journal, request, base, new=new))


def check_same_request(record: JobRecord, prov: Provider, request: EditRequest, canon: Canonical) -> None:
    """Refuse a client key that was already used for a different request (or on another host)."""
    if record.base_key is not None and request.client_key is None:
        return  # derived from this very request (webhook aside); a derived key given by hand is checked
    if record.provider != prov.name or not same_request(record, request, canon):
        raise ValidationError.single("client_key", f"{record.client_key!r} was already used for a different request")


def _digest(record: JobRecord, request: EditRequest, canon: Canonical) -> str:
    return legacy_request_hash(request) if record.request_sha256.startswith(LEGACY) else canon.request_sha256


def same_request(record: JobRecord, request: EditRequest, canon: Canonical | None = None) -> bool:
    """The logged digest is this request's, webhook URL aside: where the host reports back is
    delivery plumbing (a tunnel's URL changes between runs), not what is edited. The stored
    digest includes it, so the request is hashed again with the logged job's URL. ``canon``:
    this request's canonical form on ``record.provider``, when already made."""
    canon = canon if canon is not None else canonical(request, record.provider)
    if record.request_sha256 == _digest(record, request, canon):
        return True
    logged = (record.request or {}).get("request")
    hook = logged.get("webhook_url") if isinstance(logged, Mapping) else None
    if not isinstance(logged, Mapping) or hook == request.webhook_url or not isinstance(hook, str | None):
        return False
    try:
        again = attrs.evolve(request, webhook_url=hook)
    except ValueError:  # a logged URL today's rules refuse: nothing to compare with
        return False
    return record.request_sha256 == _digest(record, again, canonical(again, record.provider))


async def pickup(journal: JobLog, record: JobRecord, prov: Provider, request: EditRequest | None,
                 canon: Canonical | None) -> JobHandle | None:
    """The job a logged record stands for; None only when it is safe to submit under its key."""
    if request is not None and canon is not None:
        check_same_request(record, prov, request, canon)
    key = record.client_key
    if record.state == "submitting" and record.handle is None and owner_alive(record.owner) is not False:
        record = await await_claim(journal, record)
    if record.handle is not None:
        return record.handle
    if record.job_id is not None:  # an id seen in an uncertain answer, or given by hand
        handle = attrs.evolve(prov.resume(record.job_id, model=record.model), client_key=key)
        journal.transition(key, "submitted", durable=True, handle=handle)
        return handle
    if not record.created_on_host:
        return None  # the host refused it outright: no job exists, the key is free
    if record.state == "submitting":
        journal.transition(key, "uncertain", detail="the process submitting it ended before the host answered")
    # An earlier submit's outcome is unknown. Ask the host where it can tell; never guess.
    if prov.capabilities.can_reconcile:
        found = await prov.reconcile(key)
        if found is not None:
            found = attrs.evolve(found, client_key=found.client_key or key)
            journal.transition(key, "submitted", detail="found on the host by its client key", durable=True,
                               handle=found, error=None)
            log.info("reconciled client key %s to %s job %s", key, prov.name, found.job_id)
            return found
        log.info("client key %s: the host has no job, so the earlier submit never landed", key)
        journal.transition(key, "failed", detail="the host has no job under this key: never created",
                           error="the submit never reached the host")
        return None
    exc = SubmitUncertainError("an earlier submit under this client key has an unknown outcome",
                               provider=prov.name, client_key=key)
    raise reword(exc, f"{prov.name}: an earlier submit under client key {key} has an unknown outcome; it was NOT "
                      f"resubmitted\n{uncertain_hint(key, prov.name, can_reconcile=False)}")


async def await_claim(journal: JobLog, record: JobRecord) -> JobRecord:
    """Another live process is submitting this job right now: wait for its answer."""
    waited = 0.0
    while waited < CLAIM_WAIT:
        await asyncio.sleep(0.2)
        waited += 0.2
        now = journal.get(record.client_key)
        if now is None:
            break
        record = now
        if record.state != "submitting" or owner_alive(record.owner) is False:
            return record
    if record.state == "submitting" and owner_alive(record.owner) is not False:
        exc = SubmitUncertainError("another process is submitting this job", provider=record.provider,
                                   client_key=record.client_key)
        raise reword(exc, f"{record.provider}: another process ({record.owner}) is submitting job "
                          f"{record.client_key} right now and it was not submitted again; follow it with "
                          f"`{jobs_command('show', record.client_key)}`, then `{resume_command(record.client_key)}`")
    return record
