"""Small HTTP servers on 127.0.0.1 for tests: any handler, a folder of files, a webhook receiver.

Each runs on a free port in a daemon thread for the ``with`` block and yields its base URL.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def serve(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a free loopback port for the block; its base URL (``http://127.0.0.1:PORT``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_folder(folder: Path) -> contextlib.AbstractContextManager[str]:
    """The files under ``folder`` over HTTP (GET/HEAD), for hosts that take inputs by URL."""
    return serve(functools.partial(_QuietFiles, directory=str(folder)))


class Received(list[tuple[dict[str, str], bytes]]):
    """What a :func:`receiver` was sent: (headers with lower-case names, body) per POST."""

    def wait(self, count: int = 1, seconds: float = 10) -> None:
        """Until ``count`` posts have arrived (the sender is another thread or process)."""
        deadline = time.monotonic() + seconds
        while len(self) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self) >= count, f"{len(self)} of {count} posts received"


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, Received]]:
    """A webhook/callback receiver answering 204 to every POST; (its URL, what it received)."""
    received = Received()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve(Hook) as base:
        yield f"{base}/hook", received
