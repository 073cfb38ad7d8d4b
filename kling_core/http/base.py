"""The base class of providers reached over HTTP.

Subclasses declare data (base URL, auth header, error table, schemas) and write pure
builders/parsers; this class does the I/O: one API client per provider instance, an
at-most-once submit, bounded retries of idempotent GETs, and a guard that keeps credentials
on the provider's own API hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterable, Container, Iterator, Mapping
from typing import Any, ClassVar

import attrs
import httpx

from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus
from kling_core.errors import ProtocolError, ProviderError, RateLimitedError, SubmitUncertainError
from kling_core.http.errormap import ErrorInfo, ErrorTable
from kling_core.http.redact import install_redaction, redact_headers, redact_url, register_secret, scrub
from kling_core.http.retry import PRE_SEND_ERRORS, Phase, backoff_delays, classify, parse_retry_after
from kling_core.provider import JobHandle, Provider, ProviderContext

log = logging.getLogger("kling_core.http")

# Attempts after a connect failure on submit (the host never saw those requests).
SUBMIT_CONNECT_RETRIES = 3
MESSAGE_MAX = 500


def _ok(status: int) -> bool:
    return 200 <= status < 300


class HttpProvider(Provider):
    """A hosted provider. See the module docstring and the shared HttpProvider spec."""

    is_http: ClassVar[bool] = True
    default_base_url: ClassVar[str]
    # Header carrying the credential, and its value prefix ("Key", "Bearer" or "").
    auth_header: ClassVar[str] = "authorization"
    auth_scheme: ClassVar[str] = "Bearer"
    # Hosts besides the base URL's that may receive the credential (e.g. a storage API).
    credential_hosts: ClassVar[tuple[str, ...]] = ()
    error_table: ClassVar[ErrorTable] = ErrorTable()
    response_schemas: ClassVar[Mapping[str, str]] = {}

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        install_redaction()
        for secret in self.secrets.values():
            register_secret(secret.reveal())
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    # -- data-derived helpers --------------------------------------------------------
    @property
    def base_url(self) -> str:
        return (self.ctx.settings.base_url or self.default_base_url).rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def api_hosts(self) -> frozenset[str]:
        """Hosts allowed to receive the provider credential."""
        hosts = {httpx.URL(self.base_url).host, httpx.URL(self.default_base_url).host}
        return frozenset(h for h in (*hosts, *self.credential_hosts) if h)

    def auth_headers(self) -> dict[str, str]:
        """The credential header for an API call (the first declared credential)."""
        spec = self.credentials[0]
        value = self.secrets[spec.name].reveal()
        return {self.auth_header: f"{self.auth_scheme} {value}" if self.auth_scheme else value}

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
        """A request ready to send: auth header (API hosts only), JSON body, timeouts."""
        all_headers: dict[str, str] = {"accept": "application/json"}
        if auth:
            host = host_of(url)
            if host is None or host not in self.api_hosts():
                raise ProtocolError(
                    f"refusing to send the {self.name} credential to {host!r}, which is not its API host",
                    provider=self.name,
                )
            all_headers.update(self.auth_headers())
        if headers:
            all_headers.update(headers)
        timeout = httpx.Timeout(self.ctx.settings.timeout, connect=min(10.0, self.ctx.settings.timeout))
        return httpx.Request(
            method, url, params=params, headers=all_headers, json=json_body, content=content,
            extensions={"timeout": timeout.as_dict()},
        )

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
            self._client = httpx.AsyncClient(
                transport=self.ctx.transport,
                timeout=httpx.Timeout(self.ctx.settings.timeout, connect=min(10.0, self.ctx.settings.timeout)),
                # Redirects are not followed on API calls: httpx would carry custom key headers
                # (x-api-key) to whatever host a redirect names.
                follow_redirects=False,
                event_hooks={"request": [self._on_request], "response": [self._on_response]},
            )
        return self._client

    async def _on_request(self, request: httpx.Request) -> None:
        # Last line of defence: a credential never leaves for a non-API host.
        if request.url.host not in self.api_hosts():
            secrets = [s.reveal() for s in self.secrets.values()]
            for name, value in list(request.headers.items()):
                if any(s in value for s in secrets):
                    del request.headers[name]
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s headers=%s", request.method, redact_url(request.url), redact_headers(request.headers))

    async def _on_response(self, response: httpx.Response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %d headers=%s", response.request.method, redact_url(response.request.url),
                response.status_code, redact_headers(response.headers),
            )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        # A client from an event loop that has ended cannot be closed from this one; its
        # sockets are released when it is garbage-collected.
        if client is not None and self._client_loop is _running_loop():
            await client.aclose()

    # -- pure builders / parsers, written by each host ---------------------------------
    def build_submit(self, request: EditRequest) -> httpx.Request:
        raise NotImplementedError

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        raise NotImplementedError

    def build_status(self, handle: JobHandle) -> httpx.Request:
        raise NotImplementedError

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        raise NotImplementedError

    def request_schema(self, request: EditRequest) -> str | None:
        return None

    # Status codes of status GETs that carry a status document rather than an error.
    status_accept: ClassVar[Container[int]] = ()

    def error_info(self, response: httpx.Response) -> ErrorInfo:
        """What the host said; the default reads ``error``/``message``/``detail`` strings."""
        body = try_json(response)
        message = ""
        code = None
        if isinstance(body, Mapping):
            for key in ("error", "message", "detail"):
                value = body.get(key)
                if isinstance(value, str) and value.strip():
                    message = value
                    break
                if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                    message = value["message"]
                    break
            raw_code = body.get("code")
            code = str(raw_code) if isinstance(raw_code, (str, int)) and not isinstance(raw_code, bool) else None
        elif response.text.strip() and "html" not in response.headers.get("content-type", ""):
            message = response.text.strip()
        return ErrorInfo(
            message=clip(message), code=code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    def may_retry(self, response: httpx.Response) -> bool:
        """Whether a GET failure whose status looks transient (408/429/5xx) is worth repeating.

        Hosts whose error bodies say more than the status override this (Kling's HTTP 429
        also means "out of credit", which no retry fixes).
        """
        return True

    def map_error(self, response: httpx.Response, *, job_id: str | None = None) -> ProviderError:
        return self.error_table.build(self.name, response.status_code, self.error_info(response), job_id=job_id)

    # -- I/O -----------------------------------------------------------------------------
    async def send_submit(
        self, request: httpx.Request, *, client_key: str | None, stream: bool = False
    ) -> httpx.Response:
        """Send a job-creating request at most once.

        Retried only when the connection was never made; any later failure raises
        :class:`SubmitUncertainError`, and an error response its mapped error, unretried.
        ``stream``: return a 2xx response with its body unread (the caller streams it to disk
        and must close it).
        """
        delays = backoff_delays(self.poll)
        attempt = 0
        while True:
            try:
                response = await self.client.send(request, stream=stream)
                if stream and not _ok(response.status_code):
                    await response.aread()
                    await response.aclose()
            except httpx.TransportError as exc:
                if classify("submit_pre_send", exc).retry and attempt < SUBMIT_CONNECT_RETRIES:
                    attempt += 1
                    await self.ctx.sleep(next(delays))
                    continue
                if isinstance(exc, PRE_SEND_ERRORS):
                    raise ProviderError(
                        f"could not connect to {request.url.host} ({type(exc).__name__}); nothing was submitted",
                        provider=self.name, retryable=True,
                    ) from exc
                raise SubmitUncertainError(
                    f"the submit reached {request.url.host} but its answer was lost ({type(exc).__name__})",
                    provider=self.name, client_key=client_key,
                ) from exc
            if not _ok(response.status_code):
                raise self.map_error(response)
            return response

    async def send_get(
        self,
        request: httpx.Request,
        *,
        phase: Phase = "status",
        job_id: str | None = None,
        accept: Container[int] = (),
    ) -> httpx.Response:
        """Send an idempotent request, retrying transient failures within the poll budget."""
        delays = backoff_delays(self.poll)
        retries = max(0, int(self.poll.status_retries))
        attempt = 0
        while True:
            try:
                response = await self.client.send(request)
            except httpx.TransportError as exc:
                if classify(phase, exc).retry and attempt < retries:
                    attempt += 1
                    await self.ctx.sleep(next(delays))
                    continue
                raise ProviderError(
                    f"{phase} request to {request.url.host} failed ({type(exc).__name__})",
                    provider=self.name, retryable=True, job_id=job_id,
                ) from exc
            if _ok(response.status_code) or response.status_code in accept:
                return response
            decision = classify(phase, response.status_code, response.headers,
                                max_retry_after=self.poll.max_retry_after)
            if decision.retry and attempt < retries and self.may_retry(response):
                attempt += 1
                wait = next(delays)
                await self.ctx.sleep(decision.delay if decision.delay is not None else wait)
                continue
            error = self.map_error(response, job_id=job_id)
            if not decision.retry and decision.delay is not None and not isinstance(error, RateLimitedError):
                # The host asked for a longer wait than we accept: the caller decides when.
                raise RateLimitedError(
                    error.reason, retry_after=decision.delay, provider=self.name,
                    status_code=error.status_code, code=error.code, job_id=job_id,
                ) from error
            raise error

    async def submit(self, request: EditRequest) -> JobHandle:
        response = await self.send_submit(self.build_submit(request), client_key=request.client_key)
        try:
            handle = self.parse_submit(response, request)
        except ProtocolError as exc:
            # The host answered 2xx, so a job probably exists; we just cannot name it.
            raise SubmitUncertainError(
                f"the submit was accepted but its answer could not be read: {exc.reason}",
                provider=self.name, client_key=request.client_key, status_code=response.status_code,
            ) from exc
        return attrs.evolve(
            handle,
            client_key=handle.client_key or request.client_key,
            submitted_at=handle.submitted_at if handle.submitted_at is not None else self.ctx.clock(),
        )

    async def status(self, handle: JobHandle) -> JobStatus:
        response = await self.send_get(
            self.build_status(handle), phase="status", job_id=handle.job_id, accept=self.status_accept
        )
        return self.parse_status(response, handle)

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


_NOT_JSON: Any = object()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def try_json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else _NOT_JSON
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


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
