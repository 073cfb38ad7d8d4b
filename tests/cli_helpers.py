"""The ``kling`` CLI run in-process from a test, its output captured by pytest's ``capsys``."""

from __future__ import annotations

import pytest

from kling_core.cli import main


def kling(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``kling ARGS``: (exit code as the process would have it, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), out, err
