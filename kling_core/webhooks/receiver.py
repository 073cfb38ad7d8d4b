"""The receiver's decisions, apart from any web framework: one callback in, one answer out.

For ``POST /hooks/{provider}[/{client_key}]``, in this order:

1. the provider takes callbacks (its ``spec.callback``), else 404;
2. a signed scheme (``CallbackShape.signature``): headers present, timestamp within the
   window, signature valid (fal: any JWKS key, the set fetched again once on a miss), the
   delivery not seen before (409), else 401/409;
3. the body is a JSON object naming a job; the job is in the job log under that provider and
   job id, and any client key the URL or the body names is that job's, else 404 (503 when
   the URL's key names a job whose submit has not stored its id yet: the sender retries);
4. the host confirms by a status look-up (:mod:`.confirm`), which is what gets recorded; a
   waiting client is woken. A failure to look up is a 503 (the sender retries, and its retry
   is not refused as a replay). For an unsigned scheme, at most one look-up per job starts per
   ``confirm_min_interval`` (:mod:`.pacing`): a callback inside it is answered 202 and folded
   into one look-up when the interval ends.

The body's own claims are never recorded. Concurrent signed callbacks for one job share one look-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kling_core.contract.status import JobStatus
from kling_core.errors import ConfigError, KlingError, ProtocolError
from kling_core.http import fields
from kling_core.http.hostspec import CallbackShape
from kling_core.joblog import JobLog, JobRecord
from kling_core.provider import Provider
from kling_core.settings import WebhookSettings
from kling_core.webhooks.confirm import SETTLED, record_confirmed
from kling_core.webhooks.errors import WebhookRefused
from kling_core.webhooks.jwks import Fetcher, JwksCache, guarded_fetcher
from kling_core.webhooks.pacing import LookupPacer
from kling_core.webhooks.replay import DB_NAME, ReplayStore
from kling_core.webhooks.secrets import signing_key
from kling_core.webhooks.signatures import SCHEMES, Signed, check_window, ed25519_verifies, hmac_verifies

if TYPE_CHECKING:
    from kling_core.client import AsyncEditClient

log = logging.getLogger("kling_core.webhooks")
MAX_BODY = 1024 * 1024  # a callback is a small JSON document


@attrs.frozen
class Answer:
    """The HTTP answer to one callback."""

    status: int
    body: Mapping[str, Any]


class WebhookReceiver:
    """Callbacks for the jobs of ``client``'s job log, confirmed through ``client``'s providers.

    ``jwks_fetch`` replaces the guarded JWKS fetch (tests); ``clock`` the wall clock;
    ``pace_clock`` and ``sleep`` the monotonic clock and sleep that pace unsigned look-ups;
    ``report`` gets one line per callback (``kling webhooks serve`` prints them).
    """

    def __init__(self, client: AsyncEditClient, *, settings: WebhookSettings | None = None,
                 jwks_fetch: Fetcher | None = None, clock: Callable[[], float] | None = None,
                 report: Callable[[str], None] | None = None, pace_clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        if client.journal is None:
            raise ConfigError("the webhook receiver matches callbacks to the job log; this client has none",
                              key="use_journal")
        self.client = client
        self.journal: JobLog = client.journal
        self.settings = settings or client.config.webhooks
        self._clock = clock or time.time
        fetch = jwks_fetch or guarded_fetcher(client.config.media)
        self.jwks = JwksCache(self.settings.fal_jwks_url, fetch, clock=self._clock,
                              max_age=self.settings.jwks_max_age, min_refresh=self.settings.jwks_min_refresh)
        self.replays = ReplayStore(Path(self.journal.root) / DB_NAME, keep=2 * self.settings.tolerance,
                                   clock=self._clock)
        self._inflight: dict[tuple[str, str], asyncio.Task[JobStatus]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._report = report
        self.pacer = LookupPacer(self.settings.confirm_min_interval, pace_clock or time.monotonic,
                                 sleep or asyncio.sleep)

    def close(self) -> None:
        self.pacer.close()
        self.replays.close()

    # -- the one entry point ----------------------------------------------------------------
    async def handle(self, provider: str, body: bytes, headers: Mapping[str, str], *,
                     client_key: str | None = None) -> Answer:
        """Act on one callback; ``headers`` with lower-case names, ``body`` as received."""
        claimed: tuple[str, str] | None = None
        try:
            shape = self._shape(provider)
            if len(body) > MAX_BODY:
                raise WebhookRefused(413, f"the body is over {MAX_BODY} bytes")
            signed = await self._verify(provider, shape, headers, body) if shape.signature else None
            doc = _json(body)
            if signed is not None and shape.signature is not None:
                if signed.job_id is not None and fields.code(doc, shape.job_id) != signed.job_id:
                    raise WebhookRefused(400, "the body names another job than the signed header")
                if not self.replays.claim(shape.signature, signed.delivery_id):
                    raise WebhookRefused(409, "this delivery was received before (a replay)")
                claimed = (shape.signature, signed.delivery_id)
            record = self._match(provider, shape, doc, client_key)
            answer = await self._confirm(provider, record, doc, paced=shape.signature is None)
        except WebhookRefused as exc:
            if claimed is not None:
                self.replays.release(*claimed)  # not acted on: the host's retry must get through
            self._say(logging.WARNING, f"{provider} callback refused (HTTP {exc.status}): {exc.message}")
            return Answer(exc.status, {"error": exc.message})
        except BaseException:
            if claimed is not None:
                self.replays.release(*claimed)  # not acted on (it broke): the host's retry must get through
            raise
        said = answer.body
        note = ("" if said.get("confirmed") else
                " (look-up deferred: one started under confirm_min_interval ago)" if said.get("deferred") else
                " (already known; not looked up)")
        self._say(logging.INFO, f"{provider} callback for job {said.get('job_id')} (client key "
                                f"{said.get('client_key')}): {said.get('state')}{note}")
        return answer

    def _say(self, level: int, line: str) -> None:
        if self._report is not None:
            self._report(line)  # printed by the caller: logged for debugging only
            level = logging.DEBUG
        log.log(level, "%s", line)

    # -- steps --------------------------------------------------------------------------------
    def _shape(self, provider: str) -> CallbackShape:
        cls = self.client.host.providers.get(provider)
        if cls is None:
            raise WebhookRefused(404, f"no provider {provider!r} here")
        shape = callback_shape(cls)
        if shape is None:
            raise WebhookRefused(404, f"provider {provider!r} takes no callbacks")
        return shape

    async def _verify(self, provider: str, shape: CallbackShape, headers: Mapping[str, str], body: bytes) -> Signed:
        scheme = SCHEMES.get(shape.signature or "")
        if scheme is None:
            raise WebhookRefused(503, f"{provider} callbacks use signature scheme {shape.signature!r}, "
                                      "which this receiver cannot check")
        signed = scheme.read(headers, body)
        check_window(signed, self._clock(), self.settings.tolerance)
        if scheme.key == "jwks":
            if ed25519_verifies(await self.jwks.keys(), signed):
                return signed
            fresh = await self.jwks.refresh()  # a rotated key, at most once per min_refresh
            if fresh is not None and ed25519_verifies(fresh, signed):
                return signed
            raise WebhookRefused(401, f"the signature verifies with none of {provider}'s signing keys")
        try:
            key = signing_key(self.settings, provider, self.client.environ, scheme.secret_key)
        except ConfigError as exc:
            raise WebhookRefused(503, exc.message) from None
        if not hmac_verifies(key, signed):
            raise WebhookRefused(401, "the signature does not match")
        return signed

    def _match(self, provider: str, shape: CallbackShape, doc: Mapping[str, Any], url_key: str | None) -> JobRecord:
        job_id = fields.code(doc, shape.job_id)
        if job_id is None:
            raise WebhookRefused(400, f"the callback names no job ({shape.job_id})")
        record = self.journal.find_job(provider, job_id)
        body_key = fields.code(doc, shape.client_key) if shape.client_key else None
        # One answer for "no such job" and "not under that key": a caller guessing keys or job
        # ids learns nothing about which jobs exist.
        unknown = f"no {provider} job {job_id}" + (" under that client key" if url_key or body_key else "")
        if record is None:
            pending = self.journal.get(url_key) if url_key else None
            if pending is not None and pending.provider == provider and pending.job_id is None \
                    and pending.state in ("submitting", "uncertain"):
                raise WebhookRefused(503, f"job {url_key} has no host job id stored yet; retry later")
            raise WebhookRefused(404, f"{unknown} in the job log")
        for key in (url_key, body_key):
            if key is not None and key != record.client_key:
                raise WebhookRefused(404, f"{unknown} in the job log")
        return record

    async def _confirm(self, provider: str, record: JobRecord, doc: Mapping[str, Any], *, paced: bool) -> Answer:
        job_id = record.job_id or ""
        answer: dict[str, Any] = {"provider": provider, "job_id": job_id, "client_key": record.client_key}
        claimed = self._claimed_state(provider, record, doc)
        if claimed is not None:
            answer["claimed"] = claimed
        if record.state in SETTLED:
            self._wake(provider, job_id)
            return Answer(200, {**answer, "state": record.state, "confirmed": False})
        if paced and not self.pacer.admit((provider, job_id)):
            self.pacer.defer((provider, job_id), lambda: self._confirm_later(provider, record.client_key, job_id))
            return Answer(202, {**answer, "state": record.state, "confirmed": False, "deferred": True})
        try:
            # An unsigned callback's look-up is paced, not shared: one still running may have
            # asked the host before this callback's news.
            status = await asyncio.wait_for(asyncio.shield(self._lookup(provider, record, fresh=paced)),
                                            self.settings.confirm_timeout)
        except TimeoutError:
            raise WebhookRefused(503, f"the status look-up of {provider} job {job_id} took over "
                                      f"{self.settings.confirm_timeout:g} s; retry later") from None
        except KlingError as exc:
            raise WebhookRefused(503, f"the status look-up of {provider} job {job_id} failed: {exc.message}") from None
        current = self.journal.get(record.client_key) or record  # another callback may have recorded it
        state = record_confirmed(self.journal, current, status)
        if claimed is not None and claimed != status.state and not (claimed == "completed" and status.state in
                                                                      ("succeeded", "failed", "cancelled")):
            log.info("%s job %s: the callback said %s, the host says %s", provider, job_id, claimed, status.state)
        self._wake(provider, job_id)
        return Answer(200, {**answer, "state": state, "host_state": status.state, "confirmed": True})

    async def _confirm_later(self, provider: str, client_key: str, job_id: str) -> None:
        """The deferred look-up of callbacks that came inside ``confirm_min_interval``."""
        record = self.journal.get(client_key)
        if record is None or record.state in SETTLED:
            return
        try:
            status = await asyncio.wait_for(asyncio.shield(self._lookup(provider, record, fresh=True)),
                                            self.settings.confirm_timeout)
        except (TimeoutError, KlingError) as exc:
            why = exc.message if isinstance(exc, KlingError) else f"took over {self.settings.confirm_timeout:g} s"
            # Answered 202 already, so the host will not retry: a waiting client's polls still find the outcome.
            self._say(logging.WARNING, f"{provider} job {job_id}: the deferred status look-up failed: {why}")
            return
        state = record_confirmed(self.journal, self.journal.get(client_key) or record, status)
        self._wake(provider, job_id)
        self._say(logging.INFO, f"{provider} job {job_id} (client key {client_key}): {state} "
                                "(deferred look-up of callbacks inside confirm_min_interval)")

    def _lookup(self, provider: str, record: JobRecord, *, fresh: bool = False) -> asyncio.Task[JobStatus]:
        key = (provider, record.job_id or "")
        task = self._inflight.get(key)
        if fresh or task is None or task.done():
            task = asyncio.ensure_future(self._follow(provider, record))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: tuple[str, str], task: asyncio.Task[JobStatus]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _follow(self, provider: str, record: JobRecord) -> JobStatus:
        prov: Provider = self.client.provider(provider)
        handle = record.handle or prov.resume(record.job_id or "", model=record.model)
        return await prov.follow(handle)

    def _claimed_state(self, provider: str, record: JobRecord, doc: Mapping[str, Any]) -> str | None:
        """What the callback says (for the log and the answer only; never recorded)."""
        parse = getattr(self.client.host.providers.get(provider), "parse_callback", None)
        if parse is None:
            return None
        try:
            prov = self.client.provider(provider)
            status: JobStatus = prov.parse_callback(doc, model=record.model)  # type: ignore[attr-defined]
        except (ProtocolError, KlingError):
            return None
        return status.state

    def _wake(self, provider: str, job_id: str) -> None:
        wake: Callable[[str, str], object] | None = getattr(self.client, "wake", None)
        if wake is None:
            return
        result = wake(provider, job_id)
        if isinstance(result, Awaitable):
            task = asyncio.ensure_future(result)
            self._background.add(task)
            task.add_done_callback(self._background.discard)


def callback_shape(cls: object) -> CallbackShape | None:
    """How a provider class's host calls back (its ``spec.callback``); None when it does not."""
    shape = getattr(getattr(cls, "spec", None), "callback", None)
    return shape if isinstance(shape, CallbackShape) else None


def _json(body: bytes) -> Mapping[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # nesting deeper than the parser's stack is not a body we take
        raise WebhookRefused(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise WebhookRefused(400, "the body is not a JSON object")
    return doc
