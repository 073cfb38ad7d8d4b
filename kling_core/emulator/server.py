"""Serving the emulator with uvicorn: in the foreground (``kling emulate``) or a background thread.

The listening socket is bound before the server starts (port 0 picks a free port), so the
base URLs are known at once and no fixed port is ever needed. A non-loopback address is
refused unless ``public=True``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kling_core.emulator.settings import EmulatorSettings
from kling_core.errors import ConfigError
from kling_core.loopback import is_loopback_host

log = logging.getLogger("kling_core.emulator")


class _Bridge(logging.Handler):
    """uvicorn's own warnings and errors, as lines of the emulator's log."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:  # would show a traceback: the tests look for exactly this
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.sink(f"uvicorn: {text}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Emulator:
    """``with Emulator(settings) as emu: emu.urls["fal"]`` — started in a thread, stopped on exit."""

    def __init__(self, settings: EmulatorSettings | None = None, *, bind: str = "127.0.0.1", port: int = 0,
                 public: bool = False, log: Callable[[str], None] | None = None,
                 shutdown_timeout: int = 3) -> None:
        self.settings = settings or EmulatorSettings()
        if not public and not is_loopback_host(bind):
            raise ConfigError(f"{bind} is not a loopback address; the emulator binds loopback only unless "
                              "--public is given (it accepts any well-formed key and serves files to anyone)",
                              key="bind")
        from kling_core.emulator.hosts import check_hosts

        self.hosts = check_hosts(self.settings.hosts)
        self.bind = bind
        self.port = port
        self.shutdown_timeout = shutdown_timeout  # seconds open connections get on stop
        self.lines: list[str] = []
        self._sink = log or _stderr
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._sock: socket.socket | None = None
        self._tmp: Path | None = None
        self._bridge: _Bridge | None = None
        self.ca_file: Path | None = None
        self.host_objects: dict[str, Any] = {}

    # -- what clients need ------------------------------------------------------------------
    def log(self, line: str) -> None:
        self.lines.append(line)
        self._sink(line)

    @property
    def origin(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        host = self.bind if ":" not in self.bind else f"[{self.bind}]"
        if self.bind in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"{self.origin}/{name}" for name in self.hosts}

    def hint_lines(self) -> list[str]:
        return [self.host_objects[name].hint_line(url) for name, url in self.urls.items()]

    def hints(self) -> dict[str, Any]:
        return {name: self.host_objects[name].hints(url) for name, url in self.urls.items()}

    # -- building ---------------------------------------------------------------------------
    def prepare(self) -> Any:
        """Bind the socket and build the app (once); the URLs are known from here on."""
        if self._server is not None:
            return self._server
        import uvicorn

        from kling_core.emulator.app import build_app
        from kling_core.emulator.engine import Engine
        from kling_core.emulator.hosts import host_class
        from kling_core.emulator.hosts.base import HostContext
        from kling_core.emulator.webhooks import Ed25519Signer

        s = self.settings
        family = socket.AF_INET6 if ":" in self.bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.bind.strip("[]"), self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.bind}:{self.port}: {exc.strerror or exc}", key="port") from None
        sock.listen(2048)
        sock.set_inheritable(True)
        self._sock = sock
        self.port = sock.getsockname()[1]
        if s.state_dir is not None:
            root = s.state_dir
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = self._tmp = Path(tempfile.mkdtemp(prefix="kling-emulate-"))
        ssl: dict[str, Any] = {}
        if s.tls:
            from kling_core.emulator.tls import ensure_certificate

            files = ensure_certificate(root / "tls")
            self.ca_file = files.ca
            ssl = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        secret_file = root / "secret"
        if not secret_file.is_file():
            from kling_core.files import write_bytes_atomic

            write_bytes_atomic(secret_file, secrets.token_bytes(32), perms=0o600)
        engine = Engine(s, root, log=self.log)
        signer = Ed25519Signer(root / "webhook-key.pem")
        for name in self.hosts:
            ctx = HostContext(engine=engine, settings=s, host=s.host(name), signer=signer,
                              secret=secret_file.read_bytes(), log=self.log, ca_file=self.ca_file)
            self.host_objects[name] = host_class(name)(ctx)
        app = build_app(engine, self.host_objects, self.log)
        self._bridge = _Bridge(self.log)
        logging.getLogger("uvicorn.error").addHandler(self._bridge)
        config = uvicorn.Config(app, log_config=None, access_log=False, http="h11", ws="none", lifespan="on",
                                timeout_graceful_shutdown=self.shutdown_timeout, server_header=False, **ssl)
        self._server = uvicorn.Server(config)
        return self._server

    # -- running ----------------------------------------------------------------------------
    def serve(self) -> None:
        """Run in this thread until Ctrl-C (or SIGTERM); clean up afterwards."""
        server = self.prepare()
        try:
            server.run(sockets=[self._sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down for
            pass
        finally:
            self._cleanup()

    def start(self, timeout: float = 30.0) -> Emulator:
        server = self.prepare()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                server.run(sockets=[self._sock])
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)

        self._thread = threading.Thread(target=main, name="kling-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if failure or not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError(f"the emulator did not start: {failure[0] if failure else 'it exited'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start in time")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(5.0)
            self._thread = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._bridge is not None:
            logging.getLogger("uvicorn.error").removeHandler(self._bridge)
            self._bridge = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
