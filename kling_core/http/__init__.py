"""Shared machinery for providers reached over HTTP.

Internal: plugins import these through :mod:`kling_core.sdk`, users through :mod:`kling_core`.

- :class:`HttpProvider` — base class: at-most-once submit, retried status GETs, redaction.
- :func:`classify`, :func:`backoff_delays`, :func:`parse_retry_after` — retry policy.
- :func:`download_result`, :func:`download` — streamed, verified, credential-free downloads.
- :class:`RedactingFilter`, :func:`install_redaction`, :func:`register_secret` — log hygiene.
- :class:`ErrorTable`, :class:`ErrorRule` — host error responses → canonical errors, as data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The result saver: it also copies a local provider's render (the mock's), so it loads without
# httpx and is bound here at once (a lazy name could not shadow the submodule of that name).
from kling_core.http.download import download, download_result
from kling_core.lazy import exporter

if TYPE_CHECKING:
    from kling_core.http.base import HttpProvider, clip, host_of, try_json
    from kling_core.http.errormap import ErrorInfo, ErrorRule, ErrorTable
    from kling_core.http.redact import (
        RedactingFilter,
        install_redaction,
        redact_headers,
        redact_url,
        register_secret,
        scrub,
    )
    from kling_core.http.retry import Decision, backoff_delays, classify, parse_retry_after

# The rest loads on first use, so saving a local result never imports httpx.
_MODULE_OF = {
    **dict.fromkeys(("HttpProvider", "clip", "host_of", "try_json"), "kling_core.http.base"),
    **dict.fromkeys(("ErrorInfo", "ErrorRule", "ErrorTable"), "kling_core.http.errormap"),
    **dict.fromkeys(("RedactingFilter", "install_redaction", "redact_headers", "redact_url", "register_secret",
                     "scrub"), "kling_core.http.redact"),
    **dict.fromkeys(("Decision", "backoff_delays", "classify", "parse_retry_after"), "kling_core.http.retry"),
}

__all__ = [
    "Decision",
    "ErrorInfo",
    "ErrorRule",
    "ErrorTable",
    "HttpProvider",
    "RedactingFilter",
    "backoff_delays",
    "classify",
    "clip",
    "download",
    "download_result",
    "host_of",
    "install_redaction",
    "parse_retry_after",
    "redact_headers",
    "redact_url",
    "register_secret",
    "scrub",
    "try_json",
]


_load = exporter(__name__, _MODULE_OF)


def __getattr__(name: str) -> Any:
    return _load(name)
