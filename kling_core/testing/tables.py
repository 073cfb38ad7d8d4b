"""Name the entry of a plugin's error table that decided an error, for failure messages.

A wrong canonical error is fixed in the plugin's table, so the message points there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from kling_core.errors import ProviderError
from kling_core.testing.cassettes import RecordedResponse


def describe_entry(table: Any, status: int, code: str | None) -> str:
    """``ErrorTable.describe`` where it exists; the same most-to-least specific lookup otherwise."""
    describe = getattr(table, "describe", None)
    if callable(describe):
        return str(describe(status, code))
    # Tables from before ``describe``: read the documented rule maps (empty when absent).
    by_status_code: Mapping[Any, Any] = getattr(table, "by_status_code", {}) or {}
    by_code: Mapping[Any, Any] = getattr(table, "by_code", {}) or {}
    by_status: Mapping[Any, Any] = getattr(table, "by_status", {}) or {}
    if code is not None and (status, code) in by_status_code:
        return f"error_table.by_status_code[({status}, {code!r})]"
    if code is not None and code in by_code:
        return f"error_table.by_code[{code!r}]"
    if status in by_status:
        return f"error_table.by_status[{status}]"
    return f"generic status {status}"


def as_response(recorded: RecordedResponse, method: str = "GET", url: str = "https://host.invalid/") -> httpx.Response:
    """A recorded answer as the ``httpx.Response`` a plugin would have received."""
    request = httpx.Request(method, url)
    if recorded.has_json:
        return httpx.Response(recorded.status, headers=dict(recorded.headers), json=recorded.json, request=request)
    return httpx.Response(recorded.status, headers=dict(recorded.headers), text=recorded.text or "", request=request)


def entry_for(provider: object, error: BaseException | None, answers: Iterable[RecordedResponse]) -> str | None:
    """The table entry behind ``error`` (or behind the last error answer); None without a table."""
    table = getattr(provider, "error_table", None)
    if table is None:
        return None
    if isinstance(error, ProviderError) and error.status_code is not None:
        return describe_entry(table, error.status_code, error.code)
    # No HTTP status on the error: map the last error answer again (any answer, when a
    # ProviderError without a status says the error sat inside a 2xx body).
    in_body = isinstance(error, ProviderError)
    last = [a for a in answers if a.raise_ is None and (a.status >= 400 or (in_body and a.status))][-1:]
    map_error = getattr(provider, "map_error", None)
    if not last or map_error is None:
        return None
    try:
        mapped = map_error(as_response(last[0]))
    except Exception:
        return None
    code = getattr(mapped, "code", None)
    return describe_entry(table, last[0].status, code if isinstance(code, str) else None)
