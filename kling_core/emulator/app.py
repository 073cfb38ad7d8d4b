"""The ASGI application: every emulated host mounted under its own prefix, one log line per request."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kling_core.emulator.engine import Engine
from kling_core.emulator.hosts.base import Host

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class RequestLog:
    """One line per request: client, method, path, status, duration and the host's note.

    Also the last line of defence: an exception escaping a host becomes a JSON 500 and one log
    line, never a traceback.
    """

    def __init__(self, app: ASGIApp, log: Callable[[str], None]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            self.log(f"internal error on {scope.get('method')} {scope.get('path')}: {type(exc).__name__}: {exc}")
            if status[0] == 0:
                status[0] = 500
                await JSONResponse({"detail": "Internal Server Error"}, 500)(scope, receive, send)
        client = scope.get("client") or ("-", 0)
        note = (scope.get("state") or {}).get("log_note")
        ms = (time.perf_counter() - started) * 1000
        query = "?…" if scope.get("query_string") else ""
        self.log(f'{client[0]} "{scope.get("method")} {scope.get("path")}{query}" {status[0]} {ms:.1f}ms'
                 + (f" {note}" if note else ""))


def build_app(engine: Engine, hosts: Mapping[str, Host], log: Callable[[str], None]) -> ASGIApp:
    names = ", ".join(f"/{name}" for name in hosts)

    async def unknown(request: Request) -> Response:
        request.scope.setdefault("state", {})["log_note"] = "no emulated host under this path"
        return JSONResponse({"detail": f"Not Found (emulated hosts: {names})"}, status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    routes: list[BaseRoute] = [Mount(f"/{name}", app=host.asgi()) for name, host in hosts.items()]
    routes.append(Route("/{path:path}", unknown, methods=ALL_METHODS))
    return RequestLog(Starlette(routes=routes, lifespan=lifespan), log)
