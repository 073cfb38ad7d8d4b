"""The ``kling jobs`` command lines that messages tell people to paste, spelled once.

A client key may come from the user (``--client-key``, a manifest column) and hold a space or a
quote, so every key is shell-quoted here. This module imports only the standard library: the
HTTP layer uses it without loading the job log (and sqlite3).
"""

from __future__ import annotations

import shlex


def jobs_command(verb: str, client_key: str) -> str:
    """``kling jobs VERB KEY`` with the key quoted for a POSIX shell."""
    return f"kling jobs {verb} {shlex.quote(client_key)}"


def resume_command(client_key: str) -> str:
    """The command that waits for a logged job and saves its video (again)."""
    return jobs_command("resume", client_key)
