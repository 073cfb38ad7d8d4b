"""Serving the receiver with uvicorn: in-process beside a client, or in the foreground.

``async with serve_webhooks(client) as receiver:`` runs it on the caller's event loop, so a
confirmed callback wakes that client's waits at once (``kling batch --webhooks``); the socket
is bound first (port 0: a free one), so :meth:`RunningReceiver.url_for` is right from the
start. A non-loopback address is refused unless ``public=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kling_core.errors import ConfigError
from kling_core.loopback import is_loopback_host
from kling_core.settings import WebhookSettings
from kling_core.webhooks.jwks import Fetcher
from kling_core.webhooks.receiver import WebhookReceiver

if TYPE_CHECKING:
    from kling_core.client import AsyncEditClient


def bind_socket(host: str, port: int, *, public: bool = False) -> socket.socket:
    """A listening socket on ``host:port``; a non-loopback ``host`` needs ``public``."""
    if not public and not is_loopback_host(host):
        # Said for every caller: `kling batch --webhooks` has no --public.
        raise ConfigError(f"{host} is not a loopback address; the webhook receiver binds loopback only (`kling "
                          "batch --webhooks` always; `kling webhooks serve` unless --public is given, serve_webhooks() "
                          "unless public=True): prefer a loopback host with a tunnel or TLS proxy in front of it, "
                          "named by [webhooks] public_url", key="host")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="port") from None
    sock.listen(128)
    return sock


class RunningReceiver:
    """A receiver being served: its base URL and the webhook URL for each provider."""

    def __init__(self, receiver: WebhookReceiver, sock: socket.socket, public_url: str | None) -> None:
        self.receiver = receiver
        host, port = sock.getsockname()[:2]
        self.port: int = port
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        shown = f"[{shown}]" if ":" in shown else shown
        self.local_url = f"http://{shown}:{port}"
        self.base_url = (public_url or self.local_url).rstrip("/")

    def url_for(self, provider: str, client_key: str | None = None) -> str:
        """The URL to give ``provider`` as the job's webhook (with the client key: matched by both)."""
        return hook_url(self.base_url, provider, client_key)


def base_url(settings: WebhookSettings) -> str:
    """Where the configured receiver is reached: ``public_url``, else its host and port."""
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    return (settings.public_url or f"http://{shown}:{settings.port}").rstrip("/")


def hook_url(base: str, provider: str, client_key: str | None = None) -> str:
    url = f"{base.rstrip('/')}/hooks/{quote(provider, safe='')}"
    return f"{url}/{quote(client_key, safe='')}" if client_key else url


def _server(receiver: WebhookReceiver, *, signals: bool) -> Any:
    import uvicorn

    from kling_core.webhooks.app import build_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if signals:
                with super().capture_signals():
                    yield
            else:  # in-process: Ctrl-C belongs to the program the receiver runs in
                yield

    config = uvicorn.Config(build_app(receiver), log_level="warning", access_log=False, lifespan="off",
                            server_header=False)
    return Server(config)


@contextlib.asynccontextmanager
async def serve_webhooks(client: AsyncEditClient, *, host: str | None = None, port: int | None = None,
                         public: bool = False, settings: WebhookSettings | None = None,
                         jwks_fetch: Fetcher | None = None) -> AsyncIterator[RunningReceiver]:
    """Serve a receiver bound to ``client`` on this event loop for the ``async with`` block.

    ``host``/``port`` default to ``[webhooks]`` (port 0: a free one). Give the hosts
    ``running.url_for(provider)`` as the request's ``webhook_url``; callbacks are verified,
    matched to the job log, confirmed by a status look-up and wake ``client``'s waits.
    """
    settings = settings or client.config.webhooks
    sock = bind_socket(host if host is not None else settings.host,
                       port if port is not None else settings.port, public=public)
    receiver = WebhookReceiver(client, settings=settings, jwks_fetch=jwks_fetch)
    server = _server(receiver, signals=False)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    # Waits for jobs sent here may poll sparsely: a confirmed callback wakes them.
    push = getattr(client, "push_receiver", None)
    if push is not None:
        push(True)
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it stopped
                raise ConfigError("the webhook receiver stopped while starting", key="port")
            await asyncio.sleep(0.01)
        yield RunningReceiver(receiver, sock, settings.public_url)
    finally:
        if push is not None:
            push(False)
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()
        receiver.close()


def serve_forever(receiver: WebhookReceiver, sock: socket.socket) -> bool:
    """``kling webhooks serve``: serve on ``sock`` until Ctrl-C (or SIGTERM); True when Ctrl-C stopped it."""
    async def main() -> None:
        try:
            await _server(receiver, signals=True).serve(sockets=[sock])
        finally:
            receiver.close()
            await receiver.client.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down for
        return True
    return False
