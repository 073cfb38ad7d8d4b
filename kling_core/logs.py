"""Logging set-up: ``KLING_LOG=debug|info|warning|error`` turns it on, httpx's included.

Any other value is warned about on stderr (naming the variable) and logs at ``debug``, so a
misspelt level still shows what was asked for.

Every handler gets the redacting filter, so secrets never reach the log output whichever
logger (httpx, httpcore, ours, a plugin's) wrote the record.
"""

from __future__ import annotations

import logging
import os
import sys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str | None = None) -> None:
    name = (level or os.environ.get("KLING_LOG") or "").strip().lower()
    if not name:
        return  # no logging: nothing to import (the redaction lives with the HTTP machinery)
    from kling_core.http.redact import RedactingFilter, install_redaction

    lvl = LEVELS.get(name)
    if lvl is None:
        source = "level" if level else "KLING_LOG"
        sys.stderr.write(f"warning: {source}={name!r} is not one of {', '.join(LEVELS)}; logging at debug\n")
        lvl = logging.DEBUG
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(lvl)
    for noisy in ("httpx", "httpcore", "kling_core"):
        logging.getLogger(noisy).setLevel(lvl)
    install_redaction()
