"""A host's wire format as data: where things are in its URLs and JSON documents.

An :class:`~kling_core.http.base.HttpProvider` declares one :class:`HostSpec`; the base class
reads it to build every request but the submit body and to parse every response. Paths are
dotted JSON paths (:mod:`kling_core.http.fields`); URL templates take ``{job_id}``,
``{client_key}`` (both quoted as one path segment) and are joined to the base URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import attrs
from attrs import field

# What a host state means. "completed": the host is done but the result is fetched next
# (or read from the same document when the host puts it there).
HostState = Literal["queued", "running", "completed", "failed", "cancelled"]
FailureKind = Literal["job_failed", "content_policy", "validation", "insufficient_credits", "timeout", "provider"]


@attrs.frozen
class Routes:
    """URL templates for each step; a URL the host returned (``JobHandle.urls``) wins."""

    submit: str = ""
    status: str | None = None
    result: str | None = None  # None: the result is in the status document
    cancel: str | None = None
    cancel_method: str = "POST"
    lookup: str | None = None  # a job by client key (reconcile after a lost submit answer)
    status_query: Mapping[str, str] = field(factory=dict)


@attrs.frozen
class SubmitShape:
    """The submit answer: the job id, host URLs to keep, and other values to remember."""

    job_id: str = "id"
    urls: Mapping[str, str] = field(factory=dict)  # handle URL key -> path ("status": "status_url")
    data: Mapping[str, str] = field(factory=dict)  # handle data key -> path
    headers: Mapping[str, str] = field(factory=dict)  # handle data key -> response header


def _prefixer(envelope: str) -> Callable[[str], str]:
    return lambda path: f"{envelope}.{path}"


def _maybe(at: Callable[[str], str], path: str | None) -> str | None:
    return None if path is None else at(path)


@attrs.frozen
class StatusShape:
    """A status document: the host's state name, and what comes with each state."""

    state: str = "status"
    states: Mapping[str, HostState] = field(factory=dict)
    position: str | None = None
    progress: str | None = None  # percent, 0-100
    logs: str | None = None  # a list of strings or of {"message": ...}
    # A failed job's message and code, tried in order.
    error_message: tuple[str, ...] = ("error",)
    error_code: tuple[str, ...] = ()
    # "completed" with an error present is a failed job, never a success.
    completed_error: tuple[str, ...] = ()
    failure_kinds: Mapping[str, FailureKind] = field(factory=dict)  # host error code -> kind
    # Host error codes that mean the job was cancelled (fal: COMPLETED with client_cancelled).
    cancelled_codes: frozenset[str] = frozenset()
    retryable_codes: frozenset[str] = frozenset()
    default_failure: str = "the job failed"

    def within(self, envelope: str) -> StatusShape:
        """The same document read inside the answer's ``envelope`` field (Kling's and
        WaveSpeed's ``data``): every path gains that prefix."""
        at = _prefixer(envelope)
        return attrs.evolve(
            self, state=at(self.state), position=_maybe(at, self.position), progress=_maybe(at, self.progress),
            logs=_maybe(at, self.logs), error_message=tuple(map(at, self.error_message)),
            error_code=tuple(map(at, self.error_code)), completed_error=tuple(map(at, self.completed_error)),
        )


@attrs.frozen
class ResultShape:
    """Where the output video is, in a result (or completed status) document."""

    url: tuple[str, ...] = ("video.url",)
    file_size: str | None = None
    content_type: str | None = None
    file_name: str | None = None
    credits: str | None = None  # what the job cost, in host credits
    remaining_credits_header: str | None = None
    duration: str | None = None  # output seconds, reported back
    created_at_ms: str | None = None  # host timestamps, milliseconds since the epoch
    completed_at_ms: str | None = None

    def within(self, envelope: str) -> ResultShape:
        """The same document read inside the answer's ``envelope`` field: every JSON path gains
        that prefix (the header name does not)."""
        at = _prefixer(envelope)
        return attrs.evolve(
            self, url=tuple(map(at, self.url)), file_size=_maybe(at, self.file_size),
            content_type=_maybe(at, self.content_type), file_name=_maybe(at, self.file_name),
            credits=_maybe(at, self.credits), duration=_maybe(at, self.duration),
            created_at_ms=_maybe(at, self.created_at_ms), completed_at_ms=_maybe(at, self.completed_at_ms),
        )


@attrs.frozen
class CancelShape:
    """A cancel answer: True (accepted), False (too late) or an error."""

    state: str | None = None  # None: any 2xx is an accepted cancel
    accepted: frozenset[str] = frozenset()
    too_late: frozenset[str] = frozenset()
    not_found: frozenset[str] = frozenset()
    too_late_statuses: frozenset[int] = frozenset()


@attrs.frozen
class BodyError:
    """An error carried inside a 2xx answer, told by one field's value."""

    path: str
    ok: tuple[object, ...] = ()  # the answer is fine when the value is one of these
    error: tuple[object, ...] = ()  # ... or an error when it is one of these

    def holds(self, value: object) -> bool:
        from kling_core.http.fields import MISSING

        if value is MISSING:
            return False
        if self.error:
            return any(value == e and type(value) is type(e) for e in self.error)
        return not any(value == o and type(value) is type(o) for o in self.ok)


@attrs.frozen
class ErrorShape:
    """Where an error answer puts its message, code and request id."""

    message: tuple[str, ...] = ("error", "message", "detail", "error.message")
    code: tuple[str, ...] = ("code",)
    code_header: str | None = None
    request_id: str | None = None
    details: str | None = None  # a FastAPI-style list of {loc, msg, type}
    retryable_header: str | None = None  # the host's own "retry this" hint ("true"/"false")
    reset_header: str | None = None  # epoch time the rate limit resets, when no Retry-After
    # A regular expression whose first group reads the wait, in seconds, from the error message
    # when no header gives it (Replicate's 429: "Your rate limit resets in ~30s.").
    retry_after_text: str | None = None
    # A 2xx answer whose body holds an error: the status to look its code up under is read
    # from this path (the envelope's numeric code), else the HTTP status is used.
    body_error: BodyError | None = None
    body_status: str | None = None


@attrs.frozen
class CallbackShape:
    """A callback (webhook) body the host posts: its job id and how to read its status."""

    job_id: str = "id"
    status: StatusShape = field(factory=StatusShape)
    result: ResultShape = field(factory=ResultShape)
    # How the host signs its callbacks: "fal-ed25519" (Ed25519 over fal's header fields, keys
    # from its JWKS), "standard-webhooks" (HMAC-SHA256 with webhook-id/-timestamp/-signature
    # headers, as Replicate sends), "wavespeed-v3" (the same headers, "v3,<hex HMAC-SHA256>" keyed
    # by the secret without its "whsec_" prefix), or None: unsigned, trusted only after a status
    # GET agrees.
    signature: str | None = None
    # Where the body names our client key, when the host echoes it (Kling: external_task_id);
    # a callback naming another key than the job's is not matched.
    client_key: str | None = None


@attrs.frozen
class StreamShape:
    """A status stream: server-sent events, each event's data a status document (read by the
    spec's :class:`StatusShape`); the host closes it after a final state. See
    :mod:`kling_core.http.stream`."""

    # A URL template like the routes'; ``{status_url}`` is the status URL the host gave (or the
    # status route's), e.g. fal's "{status_url}/stream".
    route: str
    query: Mapping[str, str] = field(factory=dict)
    # Seconds without a byte (an event or a keep-alive comment) before the stream counts as lost.
    idle: float = 45.0
    # Times a lost stream is opened again before the wait falls back to polling alone.
    reopen: int = 2


@attrs.frozen
class HostSpec:
    routes: Routes = field(factory=Routes)
    submit: SubmitShape = field(factory=SubmitShape)
    status: StatusShape = field(factory=StatusShape)
    result: ResultShape = field(factory=ResultShape)
    cancel: CancelShape = field(factory=CancelShape)
    errors: ErrorShape = field(factory=ErrorShape)
    # HTTP statuses whose body is still a status (or result) document, e.g. FAILED as 422.
    status_accept: frozenset[int] = frozenset()
    result_accept: frozenset[int] = frozenset()
    # 404/410 on a status or result GET: the host no longer holds the job (the message says why).
    expired: Mapping[str, str] = field(factory=dict)  # phase ("status"/"result") -> message
    lookup_not_found: frozenset[str] = frozenset()  # host codes meaning "no job under that key"
    callback: CallbackShape | None = None
    stream: StreamShape | None = None  # a push channel for status changes, where the host offers one
