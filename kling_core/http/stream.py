"""A host's status stream (server-sent events) as a push channel for a job being waited for.

Where a host offers one (``HostSpec.stream``; fal: ``GET {status_url}/stream?logs=1``, each
event's ``data:`` a status document like the status GET's, closed by the host after the
``COMPLETED`` event, a comment line every 15 s to keep it open), the wait loop
(:mod:`kling_core.client.follow`) reads it beside a sparse poll. The stream never decides a
job's outcome: an event naming a final state only wakes the wait loop, whose ordinary status
and result GETs confirm it. Any failure (no connection, an error answer, no byte for
``StreamShape.idle`` seconds, an event that is not a status) loses the stream, never the job:
it is opened again up to ``StreamShape.reopen`` times (not sooner than a 429/503's Retry-After
asks; a wait over ``poll.max_retry_after`` gives it up), then the wait polls on its own schedule.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import httpx

from kling_core.contract.status import JobStatus, Running
from kling_core.errors import KlingError
from kling_core.http import fields
from kling_core.http.hostspec import StreamShape
from kling_core.http.retry import backoff_delays, parse_retry_after

if TYPE_CHECKING:
    from kling_core.http.base import HttpProvider
    from kling_core.provider import JobHandle

log = logging.getLogger("kling_core.http")

FINAL_STATES = frozenset({"completed", "failed", "cancelled"})
MAX_EVENT_CHARS = 1_000_000  # one status document; a longer event is not one
MAX_LINE_CHARS = MAX_EVENT_CHARS + len("data: ")  # the longest line such an event may hold
_BREAK = re.compile(r"\r\n|\r|\n")  # the standard's line ends (str.splitlines knows more)


@attrs.frozen
class SseEvent:
    """One server-sent event: its type ("message" unless named) and its data lines joined."""

    data: str
    event: str = "message"
    id: str | None = None


class StreamLost(Exception):
    """The stream ended, or failed, before it named a final state; ``final``: opening it again
    would fail the same way (the host refused it); ``retry_after``: the host's Retry-After on a
    429/503, seconds to wait at least before opening it again."""

    def __init__(self, reason: str, *, final: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final
        self.retry_after = retry_after


async def sse_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The lines of an event stream's body: UTF-8 (a leading BOM dropped), split at CRLF, LF or
    CR, a character or a CRLF cut between two chunks put together. An unfinished line longer
    than :data:`MAX_LINE_CHARS` loses the stream: held in memory, it would grow as long as the
    host sends bytes (each of which counts against the idle limit). An unfinished line at the
    end is dropped, as is the event it belongs to."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    parts: list[str] = []  # the unfinished line
    size = 0
    after_cr = False  # the last chunk ended with CR: a LF starting the next one ends no line
    async for chunk in chunks:
        text = decoder.decode(chunk)
        if after_cr and text.startswith("\n"):
            text, after_cr = text[1:], False
        if not text:
            continue
        after_cr = text.endswith("\r")
        *ended, tail = _BREAK.split(text)
        for line in ended:
            parts.append(line)
            yield "".join(parts)
            parts, size = [], 0
        if tail:
            parts.append(tail)
            size += len(tail)
            if size > MAX_LINE_CHARS:
                raise StreamLost(f"a line longer than {MAX_LINE_CHARS} characters")


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Server-sent events from the lines of an ``text/event-stream`` answer (the WHATWG rules:
    ``field: value`` lines, ``:`` comments, a blank line ends an event, data lines joined by
    newlines; an event without data is not dispatched)."""
    data: list[str] = []
    size = 0
    event, last_id = "", None
    async for line in lines:
        if line == "":
            if data:
                yield SseEvent(data="\n".join(data), event=event or "message", id=last_id)
            data, size, event = [], 0, ""
            continue
        if line.startswith(":"):
            continue  # a comment: the host keeping the connection open
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            size += len(value) + 1
            if size > MAX_EVENT_CHARS:
                raise StreamLost(f"an event longer than {MAX_EVENT_CHARS} characters")
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        # "retry" and unknown fields are ignored, as the standard says.


def stream_request(prov: HttpProvider, handle: JobHandle, shape: StreamShape) -> httpx.Request:
    """The GET that opens the stream: ``{status_url}`` and ``{job_id}`` filled in, the idle limit
    as the read timeout (a keep-alive comment counts as a read)."""
    template = shape.route
    if "{status_url}" in template:
        status_url = prov.handle_url(handle, "status", prov.spec.routes.status)
        template = template.replace("{status_url}", status_url.split("?", 1)[0])
    url = template.replace("{job_id}", quote(handle.job_id, safe=""))
    if "://" not in url:
        url = prov.url(url)
    request = prov.make_request("GET", url, params=dict(shape.query) or None,
                                headers={"accept": "text/event-stream", "cache-control": "no-cache"})
    timeout = prov.ctx.settings.timeout
    request.extensions["timeout"] = httpx.Timeout(timeout, connect=min(10.0, timeout), read=shape.idle).as_dict()
    return request


async def read_stream(prov: HttpProvider, handle: JobHandle, shape: StreamShape,
                      on_status: Callable[[JobStatus], None],
                      on_live: Callable[[bool], None] | None = None) -> None:
    """Read one connection of the stream until an event names a final state (return); each
    earlier status goes to ``on_status``. Anything else raises :class:`StreamLost`.
    ``on_live(True)`` once the host answers with an event stream, ``on_live(False)`` when it ends."""
    try:
        response = await prov.open_stream(stream_request(prov, handle, shape))
    except httpx.TransportError as exc:
        raise StreamLost(f"could not open it ({type(exc).__name__})") from exc
    except KlingError as exc:  # every stream connection taken (the job polls), a URL off the API host
        raise StreamLost(f"could not open it: {exc}", final=True) from exc
    try:
        code = response.status_code
        if code != 200:
            # 4xx (but a rate limit or timeout): the host does not serve it for this job.
            final = 400 <= code < 500 and code not in (408, 429)
            hint = (parse_retry_after(response.headers.get("retry-after"), now=prov.ctx.clock())
                    if code in (429, 503) else None)
            raise StreamLost(f"the host answered {code}", final=final, retry_after=hint)
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "text/event-stream":
            raise StreamLost(f"the answer is {ctype or 'untyped'}, not an event stream", final=True)
        if on_live is not None:
            on_live(True)
        try:
            logs: list[str] = []
            async for event in sse_events(sse_lines(response.aiter_bytes())):
                if _status_event(prov, handle, event, logs, on_status):
                    return
            raise StreamLost("the host closed it before the job ended")
        finally:
            if on_live is not None:
                on_live(False)
    except httpx.TransportError as exc:  # a read timeout is the idle limit passing
        raise StreamLost(f"it broke off ({type(exc).__name__})") from exc
    finally:
        await response.aclose()


def _status_event(prov: HttpProvider, handle: JobHandle, event: SseEvent, logs: list[str],
                  on_status: Callable[[JobStatus], None]) -> bool:
    """True for an event naming a final state; else its status goes to ``on_status``."""
    try:
        doc: Any = json.loads(event.data)
    except ValueError:
        raise StreamLost("an event whose data is not JSON") from None
    if not isinstance(doc, Mapping):
        raise StreamLost("an event whose data is not a status document")
    shape = prov.spec.status
    name = fields.get(doc, shape.state)
    state = shape.states.get(name) if isinstance(name, str) else None
    if state is None:
        raise StreamLost(f"an event with an unknown status {str(name)[:40]!r}")
    if state in FINAL_STATES:
        return True
    try:
        status = prov.status_from(doc, handle, shape, prov.spec.result)
    except KlingError as exc:
        raise StreamLost(f"an event that could not be read: {exc}") from None
    if isinstance(status, Running):
        # Each event carries the log lines since the one before [inferred from fal-js, which
        # gathers them]; a status from the stream carries them all, as a polled one does.
        logs.extend(status.logs)
        status = attrs.evolve(status, logs=tuple(logs))  # type: ignore[arg-type]  # attrs converter
    if status is not None:
        on_status(status)
    return False


async def watch(prov: HttpProvider, handle: JobHandle, *, on_status: Callable[[JobStatus], None],
                sleep: Callable[[float], Awaitable[None]],
                on_live: Callable[[bool], None] | None = None) -> str | None:
    """Follow the host's stream for ``handle``: None once an event names a final state, else
    why it was given up (after ``reopen`` more tries). Never raises for a stream failure.
    ``on_live`` hears when a connection starts and stops being read (see :func:`read_stream`)."""
    shape = prov.spec.stream
    if shape is None:
        return "the host offers no status stream"
    delays = backoff_delays(prov.poll)
    tries = 0
    while True:
        try:
            await read_stream(prov, handle, shape, on_status, on_live)
            return None
        except StreamLost as exc:
            reason = exc.reason
            final = exc.final
            hint = exc.retry_after
        log.debug("%s job %s: status stream lost: %s", prov.name, handle.job_id, reason)
        if final or tries >= shape.reopen:
            return reason
        limit = prov.poll.max_retry_after
        if hint is not None and hint > limit:
            # Longer than we wait for anything: the job polls on its own schedule meanwhile.
            return f"{reason}, asking for a wait of {hint:g} s (over poll.max_retry_after = {limit:g} s)"
        tries += 1
        await sleep(max(hint or 0.0, next(delays)))

