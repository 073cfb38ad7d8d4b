"""Host error responses → canonical errors, as data.

Each host declares an :class:`ErrorTable`: rules keyed by (HTTP status, host error code),
by host code alone, and by status alone. Lookup goes from the most to the least specific,
then falls back to the generic HTTP meaning of the status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
from attrs import field

from kling_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    InsufficientCreditsError,
    Problem,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ResultExpiredError,
)


@attrs.frozen
class ErrorRule:
    """What a (status, code) means: the error class, whether retrying later can help."""

    error: type[ProviderError] = ProviderError
    retryable: bool = False
    message: str | None = None  # used when the host gave no message of its own


@attrs.frozen
class ErrorInfo:
    """What a host said in an error response, before mapping."""

    message: str
    code: str | None = None
    details: Sequence[Problem] = ()
    retryable: bool | None = None  # the host's own hint (e.g. fal's X-Fal-Retryable)
    retry_after: float | None = None


# The generic meaning of each status, used when a host table says nothing more specific.
GENERIC_STATUS: Mapping[int, ErrorRule] = {
    400: ErrorRule(ProviderValidationError, False, "bad request"),
    401: ErrorRule(AuthenticationError, False, "the host rejected the API key"),
    402: ErrorRule(InsufficientCreditsError, False, "payment required"),
    403: ErrorRule(AuthenticationError, False, "forbidden: the key lacks permission"),
    404: ErrorRule(ProviderError, False, "not found"),
    408: ErrorRule(ProviderError, True, "request timeout"),
    409: ErrorRule(ProviderError, False, "conflict"),
    410: ErrorRule(ResultExpiredError, False, "gone"),
    413: ErrorRule(ProviderValidationError, False, "payload too large"),
    415: ErrorRule(ProviderValidationError, False, "unsupported media type"),
    422: ErrorRule(ProviderValidationError, False, "the host rejected the request"),
    429: ErrorRule(RateLimitedError, True, "rate limited"),
    451: ErrorRule(ContentPolicyError, False, "unavailable for legal reasons"),
}


def _fallback(status: int) -> ErrorRule:
    if status >= 500:
        return ErrorRule(ProviderError, True, "server error")
    return ErrorRule(ProviderError, False, f"HTTP error {status}")


@attrs.frozen
class ErrorTable:
    by_status_code: Mapping[tuple[int, str], ErrorRule] = field(factory=dict)
    by_code: Mapping[str, ErrorRule] = field(factory=dict)
    by_status: Mapping[int, ErrorRule] = field(factory=dict)

    def lookup(self, status: int, code: str | None) -> ErrorRule:
        if code is not None:
            rule = self.by_status_code.get((status, code)) or self.by_code.get(code)
            if rule is not None:
                return rule
        return self.by_status.get(status) or GENERIC_STATUS.get(status) or _fallback(status)

    def build(self, provider: str, status: int, info: ErrorInfo, *, job_id: str | None = None) -> ProviderError:
        """The canonical error for one response."""
        rule = self.lookup(status, info.code)
        retryable = rule.retryable if info.retryable is None else info.retryable
        message = info.message or rule.message or f"HTTP error {status}"
        kwargs: dict[str, object] = dict(
            provider=provider, status_code=status, code=info.code, retryable=retryable,
            job_id=job_id, details=tuple(info.details),
        )
        if issubclass(rule.error, RateLimitedError):
            return rule.error(message, retry_after=info.retry_after, **kwargs)
        return rule.error(message, **kwargs)  # type: ignore[arg-type]
