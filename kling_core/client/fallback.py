"""Fallback hosts: try the next provider only when the previous one certainly created no job.

A host is passed over when the request does not fit its capabilities, its key is missing, its
published price breaks ``max_cost``, or it answered the submit with a definite refusal
(authentication, validation, out of credit, rate limited before accepting), or could not be
reached at all (no connection: nothing was sent). Anything else, and above all a submit whose
outcome is unknown, stops the list: the job may exist, and paying a second host for it is what
fallback must never do. A job this request already has in the job log is picked up on its host
or not at all, even where that host cannot be used now (its key unset here): then the list
stops with an error saying how to pick it up. Every attempt is kept on the job that served (or
stopped) the list, in the job log's ``attempts``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from kling_core.client.pickup import Looked, identify, lookup, same_request
from kling_core.client.reword import reword
from kling_core.client.send import may_have_made_a_job
from kling_core.contract.models import EditRequest
from kling_core.errors import (
    NOT_SENT,
    AuthenticationError,
    InsufficientCreditsError,
    KlingError,
    MissingKeyError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    SubmitUncertainError,
    UnsupportedError,
    ValidationError,
)
from kling_core.job_commands import resume_command
from kling_core.pricing import CostEstimate, estimate, over_budget

if TYPE_CHECKING:
    from kling_core.client.base import PathArg
    from kling_core.client.submit import Started, SubmitMixin
    from kling_core.joblog import JobRecord

log = logging.getLogger(__name__)

# Answers that prove the host made no job: the next host may be tried. So does a ProviderError
# with code NOT_SENT: no connection was made, not a byte of the submit left (see definite_refusal).
DEFINITE_REFUSALS: tuple[type[KlingError], ...] = (
    AuthenticationError, ProviderValidationError, InsufficientCreditsError, RateLimitedError, MissingKeyError,
    UnsupportedError,
)
# The longest client key (the job log's and the hosts' limit).
MAX_CLIENT_KEY = 128
ProviderArg = str | Sequence[str] | None


@attrs.frozen
class Attempt:
    """One host tried for a job: ``served``, ``refused`` (no job made), ``skipped`` (not sent:
    no key, cannot serve it, over budget, no connection) or ``stopped`` (the list ended here)."""

    provider: str
    outcome: str
    reason: str | None = None
    client_key: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {"provider": self.provider, "outcome": self.outcome, "reason": self.reason,
                "client_key": self.client_key}


def provider_chain(value: ProviderArg) -> tuple[str, ...]:
    """``"fal,segmind"`` or ``["fal", "segmind"]`` -> ``("fal", "segmind")``; empty -> ``()``.

    A name given twice, or an empty name between commas, is a ValidationError on ``provider``.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValidationError.single("provider", f"{item!r} is not a provider name")
        name = item.strip()
        if not name:
            if isinstance(value, str) and value.strip() == "":
                return ()
            raise ValidationError.single("provider", f"{value!r} has an empty provider name")
        if name in names:
            raise ValidationError.single("provider", f"{name!r} is listed twice")
        names.append(name)
    return tuple(names)


def chain_for(client: SubmitMixin, provider: ProviderArg) -> tuple[str, ...]:
    """The hosts to try, in order: the given list, else the config's default and fallbacks.

    Every name is checked (and aliases resolved) before anything is sent.
    """
    names = provider_chain(provider) or client.default_chain
    resolved: list[str] = []
    for name in names:
        canonical = client.host.provider_class(name).name
        if canonical not in resolved:
            resolved.append(canonical)
    return tuple(resolved)


def client_key_for(request: EditRequest, index: int, name: str) -> EditRequest:
    """An explicit client key names one job on one host: later hosts get ``KEY.host``.

    Too long for that, KEY is shortened and the host kept (``KEY[:n].host``), so each host's
    key stays its own and a re-run derives the same one.
    """
    if request.client_key is None or index == 0:
        return request
    suffix = f".{name}"
    return attrs.evolve(request, client_key=request.client_key[:MAX_CLIENT_KEY - len(suffix)] + suffix)


def definite_refusal(exc: KlingError) -> bool:
    """The host certainly made no job for this submit: the next host of the list may be tried.

    The class alone does not tell: a refusal class on a 5xx/408 or 2xx answer, or naming a job
    id, is one send() logged ``uncertain`` (giving it the client key), so the job may exist.
    """
    if isinstance(exc, SubmitUncertainError):
        return False
    if isinstance(exc, ProviderError) and (exc.client_key is not None or may_have_made_a_job(exc)):
        return False
    if isinstance(exc, DEFINITE_REFUSALS):
        return True
    return isinstance(exc, ProviderError) and exc.code == NOT_SENT and exc.client_key is None


def estimate_on(client: SubmitMixin, name: str, request: EditRequest) -> CostEstimate | None:
    """The price estimate on one host, or None where it cannot be made (e.g. an unreadable file)."""
    try:
        return estimate(name, client.host.provider_class(name).capabilities, request)
    except KlingError:
        return None


def pending_on(client: SubmitMixin, request: EditRequest, chain: Sequence[str], *,
               new: bool = False) -> JobRecord | None:
    """The logged job that running ``request`` on this list would pick up (None: it submits)."""
    found = _pending_at(client, request, chain, new=new)
    return found[1] if found is not None else None


def _pending_at(client: SubmitMixin, request: EditRequest, chain: Sequence[str], *,
                new: bool, looks: dict[str, Looked] | None = None) -> tuple[int, JobRecord] | None:
    """The first host of ``chain`` with a job to pick up; ``looks`` gathers each host's look-up.

    Only the hosts' names are needed: a host whose key is unset here still shows its job.
    """
    from kling_core.client.submit import pending_record

    journal = client.journal
    if new or journal is None:
        return None
    for i, name in enumerate(chain):
        req = client_key_for(request, i, name)
        canon, base = identify(journal, req, name)
        looked = Looked(req, name, new, canon, base, lookup(journal, req, base, new=new))
        if looks is not None:
            looks[name] = looked
        record = pending_record(looked)
        if record is not None:
            return i, record
    return None


async def find_started(client: SubmitMixin, request: EditRequest, chain: Sequence[str], *, new: bool,
                       output: PathArg | None, looks: dict[str, Looked] | None = None) -> Started | None:
    """The job this request already has on any host of the list (picked up, never resubmitted).

    ``looks`` gathers each host's look-up for a submit that follows at once (no await between).
    """
    found = _pending_at(client, request, chain, new=new, looks=looks)
    if found is None:
        return None
    # The host whose look-up found it: start_one picks the job up there (or refuses a key
    # that was used for another request), never submits to another host.
    i, record = found
    try:
        client.provider(chain[i])
    except (MissingKeyError, UnsupportedError) as exc:
        if request.client_key is not None and (record.provider != chain[i] or not same_request(record, request)):
            # The key was used for another request: that, not the unusable host, is what is wrong.
            raise ValidationError.single("client_key", f"{record.client_key!r} was already used for a "
                                                       "different request") from None
        raise _unusable_with_job(exc, chain, i, record) from None
    return await client._start_one(client_key_for(request, i, chain[i]), provider=chain[i], output=output,
                                   looked=looks.get(chain[i]) if looks is not None else None)


async def start_chain(client: SubmitMixin, request: EditRequest, provider: ProviderArg, *, new: bool = False,
                      output: PathArg | None = None, max_cost: float | None = None) -> Started:
    """Submit ``request`` to the first host of the list that takes it (see the module doc)."""
    chain = chain_for(client, provider)
    if max_cost is not None and not (max_cost >= 0 and max_cost != float("inf")):
        raise ValidationError.single("max_cost", f"{max_cost!r} must be a finite amount of US dollars, 0 or more")
    # Each host's look-up is reused by the first submit (nothing awaited in between, so it is
    # current); later hosts, tried after an await, look again.
    looks: dict[str, Looked] = {}
    found = await find_started(client, request, chain, new=new, output=output, looks=looks)
    if found is not None:
        return found
    attempts: list[Attempt] = []
    last: KlingError | None = None
    for i, name in enumerate(chain):
        req = client_key_for(request, i, name)
        cost = estimate_on(client, name, req)
        if max_cost is not None:
            why = over_budget(cost, max_cost) if cost is not None else "the price could not be estimated"
            if why is not None:
                attempts.append(Attempt(name, "skipped", why))
                last = ValidationError.single("max_cost", why)
                continue
        try:
            looked, looks = looks.get(name), {}

            def served(key: str, name: str = name, cost: CostEstimate | None = cost) -> dict[str, Any]:
                return _attempt_fields([*attempts, Attempt(name, "served", None, key)], cost)

            started = await client._start_one(req, provider=name, new=new, output=output, looked=looked,
                                              served=served)
        except KlingError as exc:
            key = exc.client_key if isinstance(exc, ProviderError) else None
            key = key or _logged_key(client, req, name)
            if definite_refusal(exc) and not (isinstance(exc, ValidationError)
                                              and not isinstance(exc, UnsupportedError)):
                outcome = "refused" if isinstance(exc, ProviderError) and exc.code != NOT_SENT else "skipped"
                attempts.append(Attempt(name, outcome, _first_line(exc), key))
                log.info("%s did not take the job (%s); trying the next host", name, _first_line(exc))
                last = exc
                continue
            attempts.append(Attempt(name, "stopped", _first_line(exc), key))
            rest = list(chain[i + 1:])
            if key is not None:
                _log_attempts(client, key, attempts, cost)
            if rest and not isinstance(exc, ValidationError):  # a wrong request is wrong on every host
                why = ("the job may exist there, so" if isinstance(exc, SubmitUncertainError)
                       or (isinstance(exc, ProviderError) and exc.client_key is not None) else "so")
                reword(exc, f"{exc.message}\nfallback stopped at {name}: {why} {', '.join(rest)} "
                            f"{'was' if len(rest) == 1 else 'were'} not tried")
            raise
        attempts.append(Attempt(name, "picked up" if started.resumed else "served", None, started.client_key))
        if started.resumed:  # a new submit wrote them with its `submitted` state (``served``)
            _log_attempts(client, started.client_key, attempts, cost)
        return started
    assert last is not None  # the list is never empty
    for attempt in reversed(attempts):
        if attempt.client_key is not None:
            _log_attempts(client, attempt.client_key, attempts, None)
            break
    if len(attempts) > 1:
        listed = "\n".join(f"  {a.provider}: {a.outcome}: {a.reason}" for a in attempts)
        reword(last, f"no host took the job ({len(attempts)} tried, none created a job):\n{listed}")
    raise last


def _unusable_with_job(exc: KlingError, chain: Sequence[str], i: int, record: JobRecord) -> KlingError:
    """``exc`` (host ``chain[i]`` cannot be used here) saying that it holds this request's job."""
    name, key, rest = chain[i], record.client_key, list(chain[i + 1:])
    where = f", so {', '.join(rest)} {'was' if len(rest) == 1 else 'were'} not tried" if rest else ""
    if isinstance(exc, MissingKeyError):
        fix = f"store its key at {exc.variable}" if exc.variable.startswith("keyring:") else f"set {exc.variable}"
    else:
        fix = f"make {name} usable here"
    return reword(exc, f"{exc.message}\nthis request already has a job on {name} (client key {key}, "
                       f"{record.state} in the job log) that may exist there{where}: a job is paid for once. "
                       f"To pick it up, {fix}, then run the same command again or `{resume_command(key)}`")


def _first_line(exc: KlingError) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _logged_key(client: SubmitMixin, request: EditRequest, name: str) -> str | None:
    """The client key the job log holds for this request on this host, if a claim was made."""
    if client.journal is None:
        return None
    if request.client_key is not None:
        return request.client_key if client.journal.get(request.client_key) is not None else None
    try:
        _canon, base = identify(client.journal, request, name)
    except KlingError:
        return None
    record = client.journal.latest(base) if base is not None else None
    return record.client_key if record is not None and record.provider == name else None


def _log_attempts(client: SubmitMixin, key: str, attempts: list[Attempt], cost: CostEstimate | None) -> None:
    if client.journal is None:
        return
    client.journal.transition(key, **_attempt_fields(attempts, cost))


def _attempt_fields(attempts: Sequence[Attempt], cost: CostEstimate | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"attempts": [a.to_document() for a in attempts]}
    if cost is not None:
        fields["estimate"] = estimate_document(cost)
    return fields


def estimate_document(cost: CostEstimate) -> dict[str, Any]:
    """An estimate as the job log keeps it."""
    return {"usd": cost.usd, "seconds": cost.seconds, "upper_bound": cost.upper_bound,
            "usd_per_second": cost.usd_per_second, "usd_per_run": cost.usd_per_run, "source": cost.source,
            "as_of": cost.as_of}
