"""The base class of providers reached over HTTP.

A subclass declares data — base URL, auth, error table, a :class:`HostSpec` naming its routes,
states and fields — and writes the submit body. This class owns every byte of I/O: one API
client per provider instance, an at-most-once submit, bounded retries of idempotent requests,
the result fetch as its own step after the host's "completed", errors carried inside 2xx
bodies, and credentials that only reach the provider's API hosts. Subclasses override pure
builders and parsers (``build_*``/``parse_*``/``error_info``) where data is not enough, never
the send, poll or download path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import json
import logging
import re
import shlex
from collections.abc import AsyncIterable, Container, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import attrs
import httpx

from kling_core.contract.models import Cost, EditRequest, EditResult, OutputVideo, Timings
from kling_core.contract.status import (
    Cancelled,
    Completed,
    Failed,
    HostStatus,
    JobError,
    JobStatus,
    Queued,
    Running,
    Succeeded,
)
from kling_core.errors import (
    Problem,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    ResultExpiredError,
    SubmitUncertainError,
    UnsupportedError,
)
from kling_core.http import fields
from kling_core.http.auth import CredentialAuth, HeaderAuth
from kling_core.http.errormap import ErrorInfo, ErrorTable
from kling_core.http.hostspec import HostSpec, ResultShape, StatusShape
from kling_core.http.redact import install_redaction, redact_headers, redact_url, register_secret, scrub
from kling_core.http.retry import (
    NOT_SENT,
    PRE_SEND_ERRORS,
    Decision,
    Phase,
    backoff_delays,
    classify,
    parse_retry_after,
)
from kling_core.inflight import STATUS_STREAMS, LoopBound, http_concurrency, max_in_flight
from kling_core.job_commands import jobs_command
from kling_core.provider import JobHandle, Provider, ProviderContext
from kling_core.releasing_stream import ReleasingStream

log = logging.getLogger("kling_core.http")

# Attempts after a connect failure on submit (the host never saw those requests).
SUBMIT_CONNECT_RETRIES = 3
MESSAGE_MAX = 500
_AUTH = "kling_auth"  # request extension: False for a request that must carry no credential
_SAVED_BODY = "kling_saved_body"  # response extension: where a streamed submit body was saved
_URGENT = "kling_urgent"  # request extension: a GET that ends a job (the result), sent before polls


def _ok(status: int) -> bool:
    return 200 <= status < 300


class HttpProvider(Provider):
    """A hosted provider. See the module docstring and docs/http-providers.md."""

    is_http: ClassVar[bool] = True
    default_base_url: ClassVar[str]
    spec: ClassVar[HostSpec] = HostSpec()
    # The credential header and its scheme word ("Key", "Bearer" or "" for a bare key).
    auth_header: ClassVar[str] = "authorization"
    auth_scheme: ClassVar[str] = "Bearer"
    # Hosts besides the base URL's that may receive the credential (e.g. a storage API).
    credential_hosts: ClassVar[tuple[str, ...]] = ()
    error_table: ClassVar[ErrorTable] = ErrorTable()
    response_schemas: ClassVar[Mapping[str, str]] = {}
    request_schema_name: ClassVar[str | None] = None

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        install_redaction()
        for secret in self.secrets.values():
            register_secret(secret.reveal())
        self.auth = self.make_auth()
        self._hosts: frozenset[str] | None = None
        self._prefixes: tuple[str, ...] | None = None  # API origins as URL prefixes (is_api_url)
        self._timeout: dict[str, float | None] | None = None  # each request's timeouts (make_request)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        # Requests this provider sends at once; more wait here, before httpx's pool (see
        # kling_core.inflight), and the pool is sized to match.
        self.requests = LoopBound(http_concurrency(max_in_flight(self.ctx.settings, self.capabilities)))
        self._watching = 0  # status streams open (see _open_watch)

    # -- data-derived helpers --------------------------------------------------------
    @property
    def base_url(self) -> str:
        return (self.ctx.settings.base_url or self.default_base_url).rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def api_hosts(self) -> frozenset[str]:
        """Hosts allowed to receive the provider credential (computed once)."""
        if self._hosts is None:
            hosts = {httpx.URL(self.base_url).host, httpx.URL(self.default_base_url).host}
            self._hosts = frozenset(h for h in (*hosts, *self.credential_hosts, *self.extra_api_hosts()) if h)
        return self._hosts

    def extra_api_hosts(self) -> tuple[str, ...]:
        """API hosts named by settings (e.g. a configured storage URL)."""
        return ()

    def is_api_url(self, url: str) -> bool:
        """Does ``url`` go to one of the API hosts? A URL that begins with an API origin
        (``https://queue.fal.run/``) is known without parsing it: its authority ends at that
        ``/``. Any other is parsed as httpx will send it (parsing costs ~50 µs a request)."""
        if self._prefixes is None:
            origins = [httpx.URL(self.base_url), httpx.URL(self.default_base_url)]
            hosts = {u.host for u in origins}
            plain = [f"{u.scheme}://{u.netloc.decode('ascii')}/" for u in origins]
            plain += [f"https://{h}/" for h in self.api_hosts() if h not in hosts]
            self._prefixes = tuple(p for p in plain if p.isascii() and "@" not in p)
        return url.startswith(self._prefixes) or host_of(url) in self.api_hosts()

    def make_auth(self) -> CredentialAuth:
        """The credential as an ``httpx.Auth``: the first declared key in ``auth_header``."""
        spec = self.credentials[0]
        return HeaderAuth(self.name, self.api_hosts, secret=self.secrets[spec.name],
                          header=self.auth_header, scheme=self.auth_scheme)

    def make_request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        content: bytes | AsyncIterable[bytes] | None = None,
    ) -> httpx.Request:
        """A request ready to send; ``auth=False`` for one that must carry no credential."""
        if auth and not self.is_api_url(url):
            raise ProtocolError(
                f"refusing to send the {self.name} credential to {host_of(url)!r}, which is not its API host",
                provider=self.name,
            )
        all_headers: dict[str, str] = {"accept": "application/json", "user-agent": user_agent(type(self))}
        all_headers.update(headers or {})
        if self._timeout is None:
            limit = self.ctx.settings.timeout
            self._timeout = httpx.Timeout(limit, connect=min(10.0, limit)).as_dict()
        return httpx.Request(
            method, url, params=params, headers=all_headers, json=json_body, content=content,
            extensions={"timeout": self._timeout, _AUTH: auth},
        )

    def route(self, template: str, handle: JobHandle | None = None, *, client_key: str = "") -> str:
        """A route template as a URL: ``{job_id}``/``{client_key}`` quoted as one segment."""
        job_id = handle.job_id if handle is not None else ""
        path = template.format(job_id=quote(job_id, safe=""), client_key=quote(client_key, safe=""))
        return path if "://" in path else self.url(path)

    def handle_url(self, handle: JobHandle, key: str, template: str | None) -> str:
        """The URL the host gave for this step, else the route template's."""
        url = handle.urls.get(key)
        if url:
            return url
        if template is None:
            raise ProtocolError(f"{self.name} has no {key} route", provider=self.name, job_id=handle.job_id)
        return self.route(template, handle)

    # -- the client --------------------------------------------------------------------
    @property
    def client(self) -> httpx.AsyncClient:
        # A client's pooled connections belong to the event loop that opened them; a provider
        # used from a second loop (successive asyncio.run calls) gets a fresh client.
        loop = _running_loop()
        if self._client is not None and loop is not None and self._client_loop is not loop:
            self._client = None
        if self._client is None:
            self._client_loop = loop
            self._watching = 0
            size = self.requests.size + STATUS_STREAMS  # the streams have connections of their own
            self._client = httpx.AsyncClient(
                transport=self.ctx.transport,
                timeout=httpx.Timeout(self.ctx.settings.timeout, connect=min(10.0, self.ctx.settings.timeout)),
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                # Redirects are not followed on API calls: httpx would carry custom key headers
                # (x-api-key) to whatever host a redirect names.
                follow_redirects=False,
                event_hooks={"request": [self._on_request], "response": [self._on_response]},
            )
        return self._client

    async def _on_request(self, request: httpx.Request) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s headers=%s", request.method, redact_url(request.url), redact_headers(request.headers))

    async def _on_response(self, response: httpx.Response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %d headers=%s", response.request.method, redact_url(response.request.url),
                response.status_code, redact_headers(response.headers),
            )

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        if request.url.host not in self.api_hosts():
            # Last line of defence: a key written into a header by hand never leaves for another host.
            secrets = [s.reveal() for s in self.secrets.values()]
            if any(secret in value for value in request.headers.values() for secret in secrets):
                raise ProtocolError(f"refusing to send the {self.name} credential to {request.url.host!r}, "
                                    "which is not its API host", provider=self.name)
        auth = self.auth if request.extensions.get(_AUTH, True) else None
        if stream and request.method == "GET":
            return await self._open_watch(request, auth)
        # What starts or ends a job (a submit, an upload, a result GET) goes before the polls.
        await self.requests.acquire(urgent=request.method != "GET" or bool(request.extensions.get(_URGENT)))
        try:
            response = await self.client.send(request, auth=auth, stream=stream)
        except BaseException:
            self.requests.release()
            raise
        if not stream:
            self.requests.release()
            return response
        # A streamed body still holds its connection: the slot goes when the response closes.
        response.stream = ReleasingStream(response.stream, self.requests.release)
        return response

    async def _open_watch(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """A streamed GET (a status stream) waits on the host for as long as the job runs, so it
        takes no request slot (it would starve the polls) but one of ``STATUS_STREAMS``
        connections of its own, without waiting: past them it is refused at once and that
        job polls instead (kling_core.http.stream gives a refused stream up for polling)."""
        client = self.client  # first: a new client (a new loop) starts the count again
        if self._watching >= STATUS_STREAMS:
            raise ProviderError(f"{STATUS_STREAMS} status streams are open already; this job polls instead",
                                provider=self.name, code="streams_busy")
        self._watching += 1

        def closed() -> None:
            if self._client is client:  # a stream of a replaced client was counted with it
                self._watching -= 1

        try:
            response = await client.send(request, auth=auth, stream=True)
        except BaseException:
            closed()
            raise
        response.stream = ReleasingStream(response.stream, closed)
        return response

    async def open_stream(self, request: httpx.Request) -> httpx.Response:
        """Send a request whose answer is read as it arrives (the status stream,
        :mod:`kling_core.http.stream`); the caller closes the response."""
        return await self._send(request, stream=True)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        # A client from an event loop that has ended cannot be closed from this one; its
        # sockets are released when it is garbage-collected.
        if client is not None and self._client_loop is _running_loop():
            await client.aclose()

    # -- builders, from the spec (override where data is not enough) -----------------
    def build_submit(self, request: EditRequest) -> httpx.Request:
        return self.make_request("POST", self.route(self.spec.routes.submit), json_body=self.submit_body(request))

    def submit_body(self, request: EditRequest) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must write submit_body (or build_submit)")

    def build_status(self, handle: JobHandle) -> httpx.Request:
        url = self.handle_url(handle, "status", self.spec.routes.status)
        return self.make_request("GET", url, params=dict(self.spec.routes.status_query) or None)

    def build_result(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", self.handle_url(handle, "response", self.spec.routes.result))

    def build_cancel(self, handle: JobHandle) -> httpx.Request:
        url = self.handle_url(handle, "cancel", self.spec.routes.cancel)
        return self.make_request(self.spec.routes.cancel_method, url)

    def build_lookup(self, client_key: str) -> httpx.Request:
        if self.spec.routes.lookup is None:
            raise UnsupportedError(self.name, [Problem("client_key", "this host cannot look jobs up by client key")])
        return self.make_request("GET", self.route(self.spec.routes.lookup, client_key=client_key))

    def build_dry_run(self, request: EditRequest) -> httpx.Request:
        raise UnsupportedError(self.name, [Problem("dry_run", "this provider has no dry run")])

    def request_schema(self, request: EditRequest) -> str | None:
        return self.request_schema_name

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        """A handle for a bare job id, with each step's URL from the route templates."""
        handle = JobHandle(provider=self.name, job_id=job_id, model=model or self.capabilities.models[0].model)
        routes = self.spec.routes
        named = {"status": routes.status, "response": routes.result, "cancel": routes.cancel}
        if any(named.values()) and any(t and "{job_id}" in t and "://" not in t for t in named.values()):
            urls = {key: self.route(t, handle) for key, t in named.items() if t}
            return attrs.evolve(handle, urls=urls)
        return handle

    # -- parsers, from the spec ------------------------------------------------------
    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        doc = self.json_object(response)
        shape = self.spec.submit
        job_id = fields.code(doc, shape.job_id)
        if job_id is None:
            raise self.protocol_error(f"the submit answer lacks {shape.job_id!r}", response)
        urls = {}
        for key, path in shape.urls.items():
            url = fields.text(doc, path)
            if url is None:
                continue
            if not self.is_api_url(url):
                raise self.protocol_error(f"the {path} URL points at a host that is not {self.name}'s API",
                                          response, job_id=job_id)
            urls[key] = url
        data = {key: str(v) for key, path in shape.data.items() if (v := fields.code(doc, path)) is not None}
        data.update({key: v for key, h in shape.headers.items() if (v := response.headers.get(h)) is not None})
        return JobHandle(provider=self.name, job_id=job_id, model=request.model, client_key=request.client_key,
                         urls=urls, data=data)

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> HostStatus:
        """A status document (or an accepted non-2xx carrying one)."""
        with self.shape_guard(response, job_id=handle.job_id):
            return self._parse_status(response, handle)

    def _parse_status(self, response: httpx.Response, handle: JobHandle) -> HostStatus:
        doc = self.json_object(response, job_id=handle.job_id)
        shape = self.spec.status
        name = fields.get(doc, shape.state)
        if not _ok(response.status_code) and not (isinstance(name, str) and shape.states.get(name) == "failed"):
            raise self.map_error(response, job_id=handle.job_id)  # an error answer, not a status document
        status = self.status_from(doc, handle, shape, self.spec.result, response)
        has_result = self.spec.routes.result is not None or "response" in handle.urls
        if status is None:
            if not has_result:
                raise self.protocol_error(f"a completed job without an output video (looked in "
                                          f"{', '.join(self.spec.result.url)})", response, job_id=handle.job_id)
            return Completed(handle.job_id, self.name)
        if isinstance(status, Failed) and has_result and shape.states.get(name) == "completed":
            # Done with an error: the result GET still comes (as fal-client makes it), for the detail.
            return Completed(handle.job_id, self.name, error=status.error)
        return status

    def status_from(
        self, doc: Mapping[str, Any], handle: JobHandle, shape: StatusShape, result: ResultShape,
        response: httpx.Response | None = None,
    ) -> JobStatus | None:
        """A status read by the given shapes; None for "completed, result not in this document"."""
        name = fields.get(doc, shape.state)
        state = shape.states.get(name) if isinstance(name, str) else None
        job_id = handle.job_id
        if state is None:
            known = ", ".join(shape.states)
            raise self.protocol_error(f"unknown job status {name!r} (known: {known})", response, job_id=job_id)
        if state == "queued":
            return Queued(job_id, self.name, position=fields.integer(doc, shape.position, 0, 2**31))
        if state == "running":
            return Running(job_id, self.name, progress=fields.number(doc, shape.progress, 0, 100),
                           logs=self.log_lines(doc))  # type: ignore[arg-type]  # attrs converter
        if state == "cancelled":
            return Cancelled(job_id, self.name)
        if state == "failed" or any(fields.get(doc, path) not in (fields.MISSING, None, "", False)
                                    for path in shape.completed_error):
            if fields.code(doc, shape.error_code) in shape.cancelled_codes:
                return Cancelled(job_id, self.name)
            return Failed(job_id, self.name, self.job_error(doc, shape))
        if fields.first(doc, result.url) is fields.MISSING:
            return None
        return Succeeded(job_id, self.name, self.result_from(doc, handle, response, result))

    def parse_callback(self, body: Any, *, model: str | None = None) -> JobStatus:
        """A host callback (webhook) body, read by ``spec.callback``: a hint to poll, not proof.

        ``model``: the job's model, when the caller knows it (callbacks do not say).
        """
        cb = self.spec.callback
        if cb is None or not isinstance(body, Mapping):
            raise ProtocolError(f"{self.name}: not a callback this provider reads", provider=self.name)
        job_id = fields.code(body, cb.job_id)
        if job_id is None:
            raise ProtocolError(f"{self.name}: the callback lacks {cb.job_id!r}", provider=self.name)
        handle = JobHandle(provider=self.name, job_id=job_id, model=model or self.capabilities.models[0].model)
        status = self.status_from(body, handle, cb.status, cb.result)
        if status is None:
            raise ProtocolError(f"{self.name}: a completed callback without an output video", provider=self.name,
                                job_id=job_id)
        return status

    def parse_result(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        """A result document: the output video, or (accepted error statuses) why it failed."""
        with self.shape_guard(response, job_id=handle.job_id):
            if not _ok(response.status_code):
                info = self.error_info(response)
                kind = self.spec.status.failure_kinds.get(info.code or "") or (
                    "validation" if response.status_code == 422 else "job_failed")
                error = JobError(message=info.message or "the model rejected the input", code=info.code,
                                 retryable=bool(info.retryable), kind=kind)
                return Failed(handle.job_id, self.name, error)
            doc = self.json_object(response, job_id=handle.job_id)
            return Succeeded(handle.job_id, self.name, self.result_from(doc, handle, response))

    def result_from(self, doc: Mapping[str, Any], handle: JobHandle, response: httpx.Response | None,
                    shape: ResultShape | None = None) -> EditResult:
        shape = shape or self.spec.result
        url = fields.text(doc, shape.url)
        if url is None:
            raise self.protocol_error(f"the result lacks {' or '.join(shape.url)}", response, job_id=handle.job_id)
        if host_of(url) is None:
            # A host names its output by URL; a local path or another scheme is never fetched.
            raise self.protocol_error(f"the output video is not an http(s) URL: {clip(url, 100)!r}", response,
                                      job_id=handle.job_id)
        remaining = None
        if response is not None:
            remaining = fields.header_number(response.headers, shape.remaining_credits_header)
        if remaining is None:
            remaining = fields.number(handle.data, "remaining_credits", -1e15)  # kept from the submit
        credits = fields.number(doc, shape.credits)
        cost = Cost(credits=credits, remaining_credits=remaining) if credits is not None or remaining is not None else None
        video = OutputVideo(
            url=url,
            content_type=fields.text(doc, shape.content_type or "") if shape.content_type else "video/mp4",
            file_name=fields.text(doc, shape.file_name) if shape.file_name else None,
            file_size=fields.integer(doc, shape.file_size),
        )
        if video.content_type is None:
            video = attrs.evolve(video, content_type="video/mp4")
        created = fields.number(doc, shape.created_at_ms)
        completed = fields.number(doc, shape.completed_at_ms)
        duration = fields.number(doc, shape.duration)
        return EditResult(
            video=video, job_id=handle.job_id, provider=self.name, model=handle.model or "",
            timings=Timings(
                submitted_at=handle.submitted_at if handle.submitted_at is not None
                else (created / 1000 if created else None),
                completed_at=completed / 1000 if completed else self.ctx.clock(),
            ),
            cost=cost, report={"duration": duration} if duration is not None else None,
        )

    def job_error(self, doc: Mapping[str, Any], shape: StatusShape | None = None) -> JobError:
        """Why a job failed, from a failed (or completed-with-error) status document."""
        shape = shape or self.spec.status
        code = fields.code(doc, shape.error_code)
        message = fields.text(doc, shape.error_message) or code or shape.default_failure
        kind = shape.failure_kinds.get(code or "", "job_failed")
        retryable = code in shape.retryable_codes if code is not None else False
        return JobError(message=clip(message), code=code, retryable=retryable, kind=kind)

    def log_lines(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        entries = fields.get(doc, self.spec.status.logs) if self.spec.status.logs else None
        if not isinstance(entries, list):
            return ()
        out = []
        for entry in entries:
            line = fields.text(entry, "message")  # log objects ({"message": ...}); anything else is dropped
            if line:
                out.append(clip(line, 300))
        return tuple(out)

    def parse_cancel(self, response: httpx.Response, handle: JobHandle) -> bool:
        shape = self.spec.cancel
        body = try_json(response)
        state = fields.get(body, shape.state) if shape.state else fields.MISSING
        if state in shape.accepted:
            return True
        if state in shape.too_late or response.status_code in shape.too_late_statuses:
            return False
        if state in shape.not_found or response.status_code == 404:
            raise ProviderError(f"{self.name} does not know this job (or it expired)", provider=self.name,
                                status_code=response.status_code, code="NOT_FOUND", job_id=handle.job_id)
        if _ok(response.status_code):
            if shape.state is None:
                return True
            raise self.protocol_error(f"unknown cancel answer {state!r}", response, job_id=handle.job_id)
        raise self.map_error(response, job_id=handle.job_id)

    def parse_lookup(self, response: httpx.Response, client_key: str) -> JobHandle | None:
        if response.status_code == 404:
            return None
        doc = self.json_object(response)
        shape = self.spec.submit
        job_id = fields.code(doc, shape.job_id)
        if job_id is None:
            raise self.protocol_error(f"the job look-up lacks {shape.job_id!r}", response)
        data = {key: str(v) for key, path in shape.data.items() if (v := fields.code(doc, path)) is not None}
        return JobHandle(provider=self.name, job_id=job_id, client_key=client_key, data=data)

    def parse_dry_run(self, response: httpx.Response, request: EditRequest) -> Mapping[str, Any]:
        return {"provider": self.name, "model": request.model, "response": try_json(response)}

    # -- errors ------------------------------------------------------------------------
    def error_info(self, response: httpx.Response) -> ErrorInfo:
        """What the host said, read by the spec's error shape, plus what the auth adds
        (its ``explain(info, response)``, if it has one)."""
        shape = self.spec.errors
        body = try_json(response)
        message = fields.text(body, shape.message) if isinstance(body, Mapping) else None
        details: tuple[Problem, ...] = ()
        if shape.details and isinstance(body, Mapping):
            details = detail_problems(fields.get(body, shape.details))
            if details and message is None:
                message = "; ".join(str(p) for p in details)
        if message is None and not isinstance(body, Mapping) and response.text.strip() \
                and "html" not in response.headers.get("content-type", "") and "<html" not in response.text.lower():
            message = response.text
        code = fields.code(body, shape.code) if isinstance(body, Mapping) else None
        if shape.details and code is None and isinstance(body, Mapping):
            code = fields.text(body, f"{shape.details}.0.type")
        if shape.code_header and response.headers.get(shape.code_header):
            code = code or response.headers[shape.code_header]
        hint = response.headers.get(shape.retryable_header) if shape.retryable_header else None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None and shape.reset_header:
            reset = fields.header_time(response.headers, shape.reset_header)
            retry_after = max(0.0, reset - self.ctx.clock()) if reset is not None else None
        if retry_after is None and shape.retry_after_text and message:
            said = re.search(shape.retry_after_text, message)
            retry_after = parse_retry_after(said.group(1)) if said else None
        info = ErrorInfo(
            message=clip(message or ""), code=code, details=details,
            retryable=hint.strip().lower() == "true" if hint is not None else None,
            retry_after=retry_after,
            request_id=fields.text(body, shape.request_id) if shape.request_id else None,
        )
        # The auth may know more about this answer (ExpiringTokenAuth: the host's clock is off).
        explain = getattr(self.auth, "explain", None)
        return explain(info, response) if callable(explain) else info

    def error_in_body(self, response: httpx.Response) -> bool:
        """A 2xx answer that carries an error (the spec's ``errors.body_error``)."""
        rule = self.spec.errors.body_error
        return rule is not None and rule.holds(fields.get(try_json(response), rule.path))

    def map_error(self, response: httpx.Response, *, job_id: str | None = None) -> ProviderError:
        info = self.error_info(response)
        lookup = None
        if _ok(response.status_code) and self.spec.errors.body_status:
            number = fields.integer(try_json(response), self.spec.errors.body_status, 100, 599)
            lookup = number
        return self.error_table.build(self.name, response.status_code, info, job_id=job_id, lookup_status=lookup)

    def may_retry(self, response: httpx.Response) -> bool:
        """Whether a transient-looking failure (408/429/5xx) is worth repeating: the host's
        hint, else the error table's rule (Kling's HTTP 429 also means "out of credit")."""
        info = self.error_info(response)
        if info.retryable is not None:
            return info.retryable
        return self.error_table.lookup(response.status_code, info.code).retryable

    # -- I/O ---------------------------------------------------------------------------
    def saves_submit_body(self, request: EditRequest) -> bool:
        """True for a blocking host whose submit answer may be the video itself."""
        return False

    async def send_submit(self, request: httpx.Request, *, client_key: str | None, stream: bool = False) -> httpx.Response:
        """Send a job-creating request at most once.

        Retried only when the connection was never made; any later failure raises
        :class:`SubmitUncertainError`, an error answer (or a 2xx carrying one) its mapped error.
        """
        delays = backoff_delays(self.poll)
        attempt = 0
        while True:
            try:
                response = await self._send(request, stream=stream)
                if stream and not _ok(response.status_code):
                    try:
                        await response.aread()
                    finally:  # a body that breaks off must still give back the request slot
                        await response.aclose()
            except httpx.TransportError as exc:
                if classify("submit_pre_send", exc).retry and attempt < SUBMIT_CONNECT_RETRIES:
                    attempt += 1
                    await self.ctx.sleep(next(delays))
                    continue
                if isinstance(exc, PRE_SEND_ERRORS):
                    # Certain: not a byte of the request left, so no job exists (never "uncertain").
                    what = ("no connection was free in time" if isinstance(exc, httpx.PoolTimeout)
                            else "could not connect")
                    raise ProviderError(
                        f"{what} to {request.url.host} ({type(exc).__name__}); nothing was submitted",
                        provider=self.name, retryable=True, code=NOT_SENT,
                    ) from exc
                raise SubmitUncertainError(
                    f"the submit reached {request.url.host} but its answer was lost ({type(exc).__name__})"
                    + self._uncertain_hint(client_key),
                    provider=self.name, client_key=client_key,
                ) from exc
            if not _ok(response.status_code):
                raise self.map_error(response)
            if not stream and self.error_in_body(response):
                raise self.map_error(response)
            return response

    def _uncertain_hint(self, client_key: str | None) -> str:
        if client_key and self.capabilities.can_reconcile:
            command = f"kling status {shlex.quote(self.name)} {shlex.quote(client_key)}"
            return (f". {self.name} knows the job by client key {client_key!r}: `{command}` looks it up (a 'not found' there means it was never created), and "
                    "re-running the same edit with that key picks it up instead of submitting twice")
        return ""

    async def send_get(
        self, request: httpx.Request, *, phase: Phase = "status", job_id: str | None = None,
        accept: Container[int] = (),
    ) -> httpx.Response:
        """Send an idempotent request, retrying transient failures within the poll budget."""
        delays = backoff_delays(self.poll)
        retries = max(0, int(self.poll.status_retries))
        attempt = 0
        if phase == "result":
            request.extensions[_URGENT] = True  # it ends a job: sent before the polls
        while True:
            try:
                response = await self._send(request)
            except httpx.TransportError as exc:
                if classify(phase, exc).retry and attempt < retries:
                    attempt += 1
                    await self.ctx.sleep(next(delays))
                    continue
                raise ProviderError(
                    f"{phase} request to {request.url.host} failed ({type(exc).__name__})",
                    provider=self.name, retryable=True, job_id=job_id,
                ) from exc
            if _ok(response.status_code) and self.error_in_body(response):
                raise self.map_error(response, job_id=job_id)
            if _ok(response.status_code) or response.status_code in accept:
                return response
            decision = self._get_decision(phase, response)
            if decision.retry and attempt < retries and self.may_retry(response):
                attempt += 1
                wait = next(delays)
                await self.ctx.sleep(decision.delay if decision.delay is not None else wait)
                continue
            raise self._get_error(response, phase, decision.delay, job_id)

    def _get_decision(self, phase: Phase, response: httpx.Response) -> Decision:
        """``classify``, with the host's own wait hint where it sent no Retry-After (a reset
        time header, the wait named in the body text: ``error_info().retry_after``), held to
        the same ``max_retry_after`` limit."""
        limit = self.poll.max_retry_after
        decision = classify(phase, response.status_code, response.headers, max_retry_after=limit)
        if not decision.retry or decision.delay is not None:
            return decision
        hint = self.error_info(response).retry_after
        if hint is None:
            return decision
        return Decision(hint <= limit, hint)

    def _get_error(self, response: httpx.Response, phase: str, delay: float | None,
                   job_id: str | None) -> ProviderError:
        error = self.map_error(response, job_id=job_id)
        expired = self.spec.expired.get(phase)
        if expired and response.status_code in (404, 410):
            return ResultExpiredError(expired, provider=self.name, status_code=response.status_code, job_id=job_id)
        if delay is not None and not isinstance(error, RateLimitedError):
            # The host asked for a longer wait than we accept: the caller decides when.
            return RateLimitedError(error.reason, retry_after=delay, provider=self.name,
                                    status_code=error.status_code, code=error.code, job_id=job_id)
        return error

    async def submit(self, request: EditRequest) -> JobHandle:
        built = self.build_submit(request)
        if self.saves_submit_body(request):
            return await self._submit_saving_body(built, request)
        response = await self.send_submit(built, client_key=request.client_key)
        return self._handle_from(response, request)

    def _handle_from(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        try:
            handle = self.parse_submit(response, request)
        except ProtocolError as exc:
            # The host answered 2xx, so a job probably exists; we just cannot name it.
            raise SubmitUncertainError(
                f"the submit was accepted but its answer could not be read: {exc.reason}",
                provider=self.name, client_key=request.client_key, status_code=response.status_code,
                job_id=exc.job_id,  # an id the answer did name: the job log keeps it for resume
            ) from exc
        return attrs.evolve(
            handle,
            client_key=handle.client_key or request.client_key,
            submitted_at=handle.submitted_at if handle.submitted_at is not None else self.ctx.clock(),
        )

    async def _submit_saving_body(self, built: httpx.Request, request: EditRequest) -> JobHandle:
        """A blocking submit whose answer may be the video: streamed to the work dir."""
        from kling_core.http.download import StreamIncomplete, StreamTooLarge, write_stream
        from kling_core.media.workdir import work_dir

        # The answer may be the video: asked for as sent, like every download (an encoded body
        # is refused by write_stream, and would leave a job that ran without its video).
        built.headers["accept-encoding"] = "identity"
        response = await self.send_submit(built, client_key=request.client_key, stream=True)
        try:
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype.startswith("video/") or ctype == "application/octet-stream":
                name = f"{self.name}-{request.client_key or id(response)}.mp4"
                folder = work_dir(self.ctx.work_dir, self.ctx.media, self.name)
                folder.mkdir(parents=True, exist_ok=True)
                dest = folder / name
                await write_stream(response, dest, cap=self.ctx.media.max_download_bytes)
                response.extensions[_SAVED_BODY] = dest
            else:
                await response.aread()
                if self.error_in_body(response):
                    raise self.map_error(response)
        except (httpx.TransportError, StreamIncomplete) as exc:
            raise SubmitUncertainError(
                f"the answer was cut off ({type(exc).__name__}); the job ran but its video was lost",
                provider=self.name, client_key=request.client_key,
            ) from exc
        except StreamTooLarge as exc:
            # The job ran (and was paid): uncertain, never a refusal that frees the key for a resubmit.
            key = request.client_key
            again = (f"; to pay for it again with a higher limit: `{jobs_command('forget', key)} --force`, then the "
                     "same command" if key else "")
            raise SubmitUncertainError(
                f"the job ran but the video it answered with was not kept: {exc} "
                f"(media.max_download_bytes = {self.ctx.media.max_download_bytes}); this answer cannot be fetched "
                f"again{again}",
                provider=self.name, client_key=key, status_code=response.status_code,
            ) from None
        finally:
            await response.aclose()
        return self._handle_from(response, request)

    async def status(self, handle: JobHandle) -> JobStatus:
        if handle.data.get("result_url"):
            return self.result_status(handle)
        request = self.build_status(handle)
        response = await self.send_get(request, phase="status", job_id=handle.job_id,
                                       accept=self.spec.status_accept)
        status = self.parse_status(response, handle)
        if isinstance(status, Completed):
            if status.error is not None:
                return await self._failed_with_detail(handle, status.error)
            return await self.fetch_result(handle)
        return status

    async def _failed_with_detail(self, handle: JobHandle, error: JobError) -> Failed:
        """A job the host called done with an error: its result answer repeats the model's own
        error, so it is fetched (as fal-client does) and its detail joins the status's error.
        The job has failed either way: a result GET that fails itself leaves the status's error."""
        try:
            response = await self.send_get(self.build_result(handle), phase="result", job_id=handle.job_id,
                                           accept=_MODEL_ERROR_STATUSES)
        except ProviderError:
            return Failed(handle.job_id, self.name, error)
        return Failed(handle.job_id, self.name, self.completed_error_detail(response, error))

    def completed_error_detail(self, response: httpx.Response, error: JobError) -> JobError:
        """The status's error with what the result answer says (pure; override to read more)."""
        if _ok(response.status_code):
            return error  # an output despite the error: still not a success
        info = self.error_info(response)
        detail = info.message
        if not detail or detail in error.message:
            message = error.message
        elif error.message in detail or error.message == self.spec.status.default_failure:
            message = detail
        else:
            message = f"{error.message}: {detail}"
        code = error.code or info.code
        kind = error.kind
        if kind == "job_failed":
            kind = self.spec.status.failure_kinds.get(info.code or "") or (
                "validation" if response.status_code == 422 else "job_failed")
        retryable = info.retryable if info.retryable is not None else error.retryable
        return JobError(message=clip(message), code=code, retryable=retryable, kind=kind)

    async def fetch_result(self, handle: JobHandle) -> JobStatus:
        """The result step, after the host said "completed"."""
        response = await self.send_get(self.build_result(handle), phase="result", job_id=handle.job_id,
                                       accept=self.spec.result_accept)
        return self.parse_result(response, handle)

    def result_status(self, handle: JobHandle) -> JobStatus:
        """A job whose result came with the submit answer (a blocking host): its handle data
        holds ``result_url`` (and ``file_size``, ``content_type``, ``remaining_credits``)."""
        data = handle.data
        size = data.get("file_size", "")
        video = OutputVideo(url=data["result_url"], content_type=data.get("content_type") or "video/mp4",
                            file_size=int(size) if size.isdigit() else None)
        remaining = fields.number(data, "remaining_credits", -1e15)
        result = EditResult(
            video=video, job_id=handle.job_id, provider=self.name, model=handle.model or "",
            timings=Timings(submitted_at=handle.submitted_at, completed_at=handle.submitted_at),
            cost=Cost(remaining_credits=remaining) if remaining is not None else None,
        )
        return Succeeded(handle.job_id, self.name, result)

    async def cancel(self, handle: JobHandle) -> bool:
        if not self.capabilities.can_cancel:
            return await super().cancel(handle)
        # Cancelling twice is harmless, so transient failures are retried like a status GET.
        response = await self.send_get(self.build_cancel(handle), phase="status", job_id=handle.job_id,
                                       accept=(400, 404, 409))
        return self.parse_cancel(response, handle)

    async def reconcile(self, client_key: str) -> JobHandle | None:
        """The job a lost submit created, found by its client key; None if none was."""
        try:
            response = await self.send_get(self.build_lookup(client_key), phase="status", accept=(404,))
        except ProviderError as exc:
            if exc.code is not None and exc.code in self.spec.lookup_not_found:
                return None
            raise
        return self.parse_lookup(response, client_key)

    async def dry_run(self, request: EditRequest) -> Mapping[str, Any]:
        """Validate (and price) without creating a job, where the host offers it.

        Sent like a submit, never repeated once sent: a host ignoring the flag would bill twice.
        """
        built = self.build_dry_run(request)
        response = await self.send_submit(built, client_key=None)
        return self.parse_dry_run(response, request)

    # -- parsing helpers -----------------------------------------------------------------
    def protocol_error(self, message: str, response: httpx.Response | None = None,
                       *, job_id: str | None = None) -> ProtocolError:
        return ProtocolError(
            message, provider=self.name, job_id=job_id,
            status_code=response.status_code if response is not None else None,
        )

    @contextlib.contextmanager
    def shape_guard(self, response: httpx.Response, *, job_id: str | None = None) -> Iterator[None]:
        """Turn a model validator's complaint about host data into a ProtocolError."""
        try:
            yield
        except (ValueError, TypeError) as exc:
            raise self.protocol_error(f"the host sent a value out of range: {clip(str(exc), 200)}",
                                      response, job_id=job_id) from None

    def json_object(self, response: httpx.Response, *, job_id: str | None = None) -> Mapping[str, Any]:
        """The response body as a JSON object, or ProtocolError."""
        body = try_json(response)
        if not isinstance(body, Mapping):
            what = "not JSON" if body is _NOT_JSON else f"a JSON {type(body).__name__}, not an object"
            raise self.protocol_error(f"expected a JSON object, got {what}", response, job_id=job_id)
        return body


# A result answer that repeats a model's error; 401/403/404/410/429 say something else.
_MODEL_ERROR_STATUSES = frozenset(range(400, 600)) - {401, 403, 404, 410, 429}
FIRST_PARTY = ("kling_core", "kling_core_plugins")


@functools.cache
def user_agent(provider_cls: type) -> str:
    """``kling-core/<version>``, then ``<distribution>/<version>`` for a third-party plugin
    (its top-level package name when no installed distribution provides it)."""
    from kling_core import __version__

    agent = f"kling-core/{__version__}"
    root = provider_cls.__module__.split(".")[0]
    if root in FIRST_PARTY:
        return agent
    for dist in importlib.metadata.packages_distributions().get(root, []):
        try:
            return f"{agent} {dist}/{importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"{agent} {root}"


def saved_body(response: httpx.Response) -> Path | None:
    """Where a blocking host's video answer was saved (see ``saves_submit_body``)."""
    value = response.extensions.get(_SAVED_BODY)
    return value if isinstance(value, Path) else None


def detail_problems(detail: Any) -> tuple[Problem, ...]:
    """A FastAPI-style ``detail`` list (loc/msg/type) as problems; ``loc`` drops 'body'."""
    if not isinstance(detail, list):
        return ()
    out: list[Problem] = []
    for item in detail:
        if not isinstance(item, Mapping):
            continue
        loc = item.get("loc")
        parts = [str(p) for p in loc] if isinstance(loc, list) else []
        if parts and parts[0] == "body":
            parts = parts[1:]
        msg = item.get("msg")
        out.append(Problem(".".join(parts), clip(msg if isinstance(msg, str) else str(item.get("type", "invalid")), 300)))
    return tuple(out)


_NOT_JSON: Any = object()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_PARSED = "kling_json"  # response extension: the body, parsed once


def try_json(response: httpx.Response) -> Any:
    """The body as JSON (or a not-JSON marker), parsed once per response: the auth flow, the
    2xx error rule, the parser and the error mapping all read the same answer."""
    if _PARSED in response.extensions:
        return response.extensions[_PARSED]
    try:
        doc = json.loads(response.content) if response.content else _NOT_JSON
    except httpx.ResponseNotRead:
        return _NOT_JSON  # a streamed body not read yet: not cached, it may be read later
    except (ValueError, UnicodeDecodeError):
        doc = _NOT_JSON
    response.extensions[_PARSED] = doc
    return doc


def host_of(url: str) -> str | None:
    """The host of a URL, or None when it is not a valid absolute http(s) URL."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    if u.scheme not in ("http", "https") or not u.host:
        return None
    return u.host


def clip(text: str, limit: int = MESSAGE_MAX) -> str:
    """A host message fit for an exception: scrubbed of secrets and bounded in length."""
    text = scrub(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
