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
    # The account's jobs in flight are at the host's limit (Kling's 1303): no job was made, so
    # the client lowers its bound on jobs in flight and resubmits when one of its jobs ends.
    # Hosts that queue past their limit (fal, WaveSpeed) never set it.
    in_flight_limit: bool = False


@attrs.frozen
class ErrorInfo:
    """What a host said in an error response, before mapping."""

    message: str
    code: str | None = None
    details: Sequence[Problem] = ()
    retryable: bool | None = None  # the host's own hint (e.g. fal's X-Fal-Retryable)
    retry_after: float | None = None
    request_id: str | None = None  # the host's id for this answer, for support requests


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
        return self._find(status, code)[0]

    def describe(self, status: int, code: str | None) -> str:
        """Which entry decides this (status, code): named so a wrong mapping points at the table."""
        return self._find(status, code)[1]

    def _find(self, status: int, code: str | None) -> tuple[ErrorRule, str]:
        if code is not None:
            if (status, code) in self.by_status_code:
                return self.by_status_code[(status, code)], f"error_table.by_status_code[({status}, {code!r})]"
            if code in self.by_code:
                return self.by_code[code], f"error_table.by_code[{code!r}]"
        if status in self.by_status:
            return self.by_status[status], f"error_table.by_status[{status}]"
        if status in GENERIC_STATUS:
            return GENERIC_STATUS[status], f"the generic meaning of HTTP {status} (no error_table entry)"
        return _fallback(status), f"the generic meaning of HTTP {status} (no error_table entry)"

    def build(
        self, provider: str, status: int, info: ErrorInfo, *, job_id: str | None = None,
        lookup_status: int | None = None,
    ) -> ProviderError:
        """The canonical error for one answer.

        ``lookup_status``: the status to look the code up under when it differs from the HTTP
        one (an error inside a 2xx answer carries its own status in the body).
        """
        rule = self.lookup(lookup_status if lookup_status is not None else status, info.code)
        retryable = rule.retryable if info.retryable is None else info.retryable
        meaning, said = rule.message, info.message
        if meaning and said:
            # Keep both unless one already says the other (the table's meaning may carry advice).
            if said.lower() in meaning.lower():
                message = meaning
            elif meaning.lower() in said.lower():
                message = said
            else:
                message = f"{meaning}: {said}"
        else:
            message = said or meaning or f"HTTP error {status}"
        if info.request_id:
            message += f" [request_id {info.request_id}]"
        in_body = 200 <= status < 300
        if in_body:
            message += f" (in an HTTP {status} answer)"
        details = tuple(info.details)
        if not details and said and issubclass(rule.error, ProviderValidationError):
            details = (Problem("", said),)
        kwargs: dict[str, object] = dict(
            provider=provider, status_code=None if in_body else status, code=info.code,
            retryable=retryable, job_id=job_id, details=details,
        )
        error: ProviderError
        if issubclass(rule.error, RateLimitedError):
            error = rule.error(message, retry_after=info.retry_after, **kwargs)
        else:
            error = rule.error(message, **kwargs)  # type: ignore[arg-type]
        if in_body:
            error.body_status = lookup_status
        error.in_flight_limit = rule.in_flight_limit
        return error
