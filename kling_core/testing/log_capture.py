"""Every log record made during a replay, from any logger, whatever its level or handlers.

A plugin may log on a logger of its own that the core's redaction never sees, at DEBUG, or on
a logger that does not propagate. So the capture does not rely on handlers: it wraps the log
record factory (every record passes through it) and, for the duration, opens every logger to
DEBUG and lifts ``logging.disable``. Everything is put back on exit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def all_log_records() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    previous_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous_factory(*args, **kwargs)
        records.append(record)
        return record

    manager = logging.root.manager
    loggers = [logging.root, *(lg for lg in list(manager.loggerDict.values()) if isinstance(lg, logging.Logger))]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    disabled = manager.disable
    logging.setLogRecordFactory(factory)
    logging.disable(logging.NOTSET)
    for lg in loggers:
        lg.disabled = False
        if lg.level > logging.DEBUG or lg is logging.root:
            lg.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logging.setLogRecordFactory(previous_factory)
        for lg, level, was_disabled in saved:
            lg.setLevel(level)
            lg.disabled = was_disabled
        logging.disable(disabled)


def rendered(record: logging.LogRecord) -> str:
    """A record's message as a handler would write it, its raw args, and any exception text."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: its parts still count
        message = str(record.msg)
    parts = [message, str(record.msg), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(f"{record.exc_info[1]!s} {record.exc_info[1]!r}")
    return "\n".join(parts)


def secrets_logged(records: Iterable[logging.LogRecord], canaries: Iterable[str]) -> list[str]:
    """One line per record that holds a canary credential (the logger and level, never the value)."""
    keys = [c for c in canaries if c]
    out = []
    for record in records:
        text = rendered(record)
        if any(c in text for c in keys):
            out.append(f"the credential appears in a log record (logger {record.name!r}, {record.levelname})")
    return out
