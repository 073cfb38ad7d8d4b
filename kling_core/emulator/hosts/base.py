"""What an emulated host provides, and the request helpers every host shares.

A host is mounted at ``/<name>`` and gets every request under it (one catch-all route), so
that unknown paths, wrong methods, bad bodies and its own errors all come back in *its* wire
shape. A host module supplies: the ASGI app, the hints that tell each client how to reach it,
and a finish hook (webhooks/callbacks) registered with the engine.

To add a host: subclass :class:`Host`, register it in ``kling_core.emulator.hosts.HOSTS``, and
see docs/emulator.md.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kling_core.asgi_body import BodyTooLarge, limited_body, read_body
from kling_core.emulator.engine import Engine, Job
from kling_core.emulator.settings import EmulatorSettings, HostSettings
from kling_core.emulator.webhooks import Ed25519Signer, deliver


class BadJson(Exception):
    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@attrs.frozen
class HostContext:
    engine: Engine
    settings: EmulatorSettings
    host: HostSettings
    signer: Ed25519Signer
    secret: bytes  # for tokens and signed upload URLs this emulator issues
    log: Callable[[str], None]
    ca_file: Path | None = None  # the CA clients trust when the emulator serves https


class Host(abc.ABC):
    name: ClassVar[str]

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine

    def asgi(self) -> ASGIApp:
        """The app mounted at ``/<name>``: :meth:`dispatch`, with disconnects and bugs in this host's shape."""
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            request = Request(scope, receive)
            try:
                response = await self.dispatch(request)
            except ClientDisconnect:
                self.note(request, "client disconnected")
                response = self.disconnected(request)
            except Exception as exc:  # a bug: the host's own 500 shape, one log line, no traceback
                self.ctx.log(f"{self.name}: internal error on {request.method} {request.url.path}: "
                             f"{type(exc).__name__}: {exc}")
                response = self.internal_error(request)
            await response(scope, receive, send)

        return app

    @abc.abstractmethod
    async def dispatch(self, request: Request) -> Response:
        """The answer to one request under ``/<name>``."""

    @abc.abstractmethod
    def disconnected(self, request: Request) -> Response:
        """This host's answer when the client went away mid-request."""

    @abc.abstractmethod
    def internal_error(self, request: Request) -> Response:
        """This host's 500 (or equivalent) for a bug in the emulator."""

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        """This host's refusal of a method other than ``allowed`` (for :meth:`only`)."""
        raise NotImplementedError

    async def only(self, request: Request, method: str, allowed: str,
                   handler: Callable[[], Awaitable[Response]]) -> Response:
        """``handler()`` when ``method`` is ``allowed``, else :meth:`method_not_allowed`."""
        if method != allowed:
            return self.method_not_allowed(request, allowed)
        return await handler()

    def base(self, request: Request) -> str:
        """This host's base URL as the client reached it (``scheme://host:port/<name>``)."""
        return f"{request.url.scheme}://{request.url.netloc}/{self.name}"

    def segments(self, request: Request) -> list[str]:
        """The request path below ``/<name>``, split into its non-empty segments."""
        path = request.url.path
        prefix = f"/{self.name}"
        rest = path[len(prefix):] if path.startswith(prefix) else path
        return [s for s in rest.split("/") if s]

    def key_refusal(self, request: Request, scheme: str) -> str | None:
        """Why ``Authorization: <scheme> <key>`` is refused (noted on the request), or None.

        The key must be well-formed and, when keys are configured, one of them.
        """
        value = request.headers.get("authorization")
        given, _, key = (value or "").strip().partition(" ")
        key = key.strip()
        why = None
        if value is None:
            why = "no Authorization header"
        elif given.lower() != scheme.lower() or not key or any(c.isspace() or not c.isprintable() for c in key):
            why = f"malformed Authorization (expected: {scheme} <key>)"
        elif self.ctx.host.keys and key not in self.ctx.host.keys:
            why = "a key that is not configured"
        if why is not None:
            self.note(request, why)
        return why

    async def read_body(self, request: Request, too_large: Callable[[], Response],
                        bad_json: Callable[[BadJson], Response]) -> tuple[Any, Response | None]:
        """(the parsed JSON body, None), or (None, this host's refusal) when it is too large or not JSON."""
        try:
            return await read_json(request, self.ctx.settings.max_json_bytes), None
        except BodyTooLarge:
            return None, too_large()
        except BadJson as exc:
            return None, bad_json(exc)

    async def send_callback(self, job: Job, document: Callable[[Job], Any],
                            sign: Callable[[bytes], dict[str, str]] | None = None) -> None:
        """POST ``document(job)`` to the job's callback URL, if it has one, with the headers
        ``sign(body)`` gives (unsigned without ``sign``); the job's ``webhook`` notes the outcome."""
        if not job.webhook_url:
            return
        body = json.dumps(document(job)).encode()
        job.webhook = "pending"
        ctx = self.ctx
        delivered = await deliver(job.webhook_url, body, sign(body) if sign is not None else {},
                                  attempts=ctx.settings.webhook_attempts, backoff=ctx.settings.webhook_backoff,
                                  log=lambda line: ctx.log(f"{self.name}: {line}"))
        job.webhook = "delivered" if delivered else "failed"

    def own_job(self, request: Request, job_id: str, what: str) -> Job | None:
        """This host's job ``job_id``; None for another host's or none (noted as an unknown ``what``)."""
        job = self.engine.get(job_id)
        if job is None or job.host != self.name:
            self.note(request, f"unknown {what} {job_id[:40]!r}")
            return None
        return job

    def stored_file(self, key: str, name: str, not_found: Callable[[], Response]) -> Response:
        """A file this emulator stored (an output; public, as the hosts' CDN URLs are), else ``not_found()``."""
        path = self.engine.storage.find(key, name)
        if path is None:
            return not_found()
        return FileResponse(path, media_type="video/mp4" if name.endswith(".mp4") else "application/octet-stream")

    def bearer_hints(self, base_url: str, key_variable: str, upstream: str, submit: str,
                     **more: Any) -> dict[str, Any]:
        """:meth:`hints` of a host whose provider needs only ``base_url`` and a Bearer key from
        ``key_variable``; ``submit`` is a path to POST below it (``upstream`` + path upstream)."""
        return {"base_url": base_url,
                "kling_config": {f"providers.{self.name}.base_url": base_url, "media.allow_private_urls": True},
                "env": {key_variable: "any-key"},
                "requests": f"POST {base_url}/{submit} with Authorization: Bearer <key> "
                            f"(in place of {upstream}/{submit})", **more}

    def bearer_hint_line(self, base_url: str, key_variable: str, upstream: str, path: str) -> str:
        """:meth:`hint_line` to go with :meth:`bearer_hints`; ``path``: the API below the base."""
        return (f"{self.name}  {base_url}  kling: [providers.{self.name}] base_url = \"{base_url}\", "
                f"[media] allow_private_urls = true, any {key_variable}; requests/curl: {base_url}/{path} "
                f"in place of {upstream}/{path} (inputs: loopback URLs)")

    @abc.abstractmethod
    def hints(self, base_url: str) -> dict[str, Any]:
        """How each client reaches this host at ``base_url`` (``/<name>`` on the emulator)."""

    @abc.abstractmethod
    def hint_line(self, base_url: str) -> str:
        """One line for the console: the base URL and how to point each client at it."""

    @staticmethod
    def note(request: Request, text: str) -> None:
        """Something for this request's log line (never a secret)."""
        request.scope.setdefault("state", {})["log_note"] = text


def is_http_url(value: Any) -> bool:
    """Whether ``value`` is an http(s) URL: the scheme, something after it, no white space."""
    if not isinstance(value, str):
        return False
    scheme, sep, rest = value.partition("://")
    return bool(sep and rest) and scheme.lower() in ("http", "https") and not any(c.isspace() for c in value)


async def read_json(request: Request, cap: int) -> Any:
    """The parsed JSON body; BodyTooLarge, BadJson (ClientDisconnect passes through)."""
    data = await read_body(request, cap)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson("the body is not UTF-8", exc.start) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadJson(exc.msg, exc.pos) from None
    except RecursionError:
        raise BadJson("nested too deeply") from None


__all__ = ["BadJson", "BodyTooLarge", "ClientDisconnect", "Host", "HostContext", "is_http_url", "limited_body",
           "read_json"]
