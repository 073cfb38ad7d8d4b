"""Record a scenario against a live host and write it as a scrubbed cassette.

Opt-in only (``pytest --kling-record`` or ``KLING_RECORD=1``) and never in CI: it needs real
keys and spends money. Every credential value is replaced by ``<SECRET>`` wherever it shows
up (auth headers keep their scheme word: ``Key <SECRET>``), only the headers a replay compares
are kept, and the written file must pass the schema and the secrets scan before it replaces
anything on disk.

Besides the configured keys, the recorder scrubs what a run hands out or carries along:
signed-URL query values (``X-Amz-Signature``, ``Signature``, ``token``, ``sig``, an
``Expires`` beside a signature, ... see :data:`~kling_core.testing.secrets.SIGNED_QUERY_PARAMS`)
in every URL of requests and responses, JWTs, ``Bearer``/``Key`` tokens, and the value of
every auth-like field (``token``, ``access_token``, ``api_key`` ...) such as the token fal's
storage auth endpoint returns. Each value removed is learnt, so an echo of it anywhere later
in the recording is scrubbed too.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from kling_core.contract.models import EditRequest
from kling_core.contract.status import is_terminal
from kling_core.errors import KlingError, ProviderError, ValidationError
from kling_core.files import write_text_atomic
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider
from kling_core.serialization import unstructure
from kling_core.testing.cassettes import SECRET, parse_cassette
from kling_core.testing.doubles import build_provider
from kling_core.testing.matching import AUTH_HEADERS
from kling_core.testing.secrets import (
    JWT_RE,
    SCHEME_TOKEN_RE,
    SECRET_PATTERNS,
    is_auth_field,
    looks_random,
    scan_document,
    scrub_signed_urls,
)

KEEP_REQUEST_HEADERS = frozenset({"content-type"}) | AUTH_HEADERS
KEEP_RESPONSE_HEADERS = frozenset({"content-type", "retry-after"})
_SCHEME_TOKEN = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)\s+\S.*$")
_RAISABLE = ("ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError")
MIN_LEARNT = 12  # a value seen in the traffic is replaced everywhere only from this length on
_SCHEME_WORD = re.compile(r"^(?:Key|Bearer)\s+")


def learn(secrets: list[str], value: str) -> None:
    """Add a token seen in the traffic to ``secrets`` (in place) so every echo of it is scrubbed.

    Short values and ones with spaces are not learnt: replacing them everywhere would mangle
    ordinary text (they are still replaced where they were found).
    """
    value = value.strip()
    if len(value) >= MIN_LEARNT and not any(c.isspace() for c in value) and SECRET not in value \
            and value not in secrets:
        secrets.append(value)


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` without known secrets, signed-URL query values, JWTs and scheme tokens.

    Values removed by shape (not already in ``secrets``) are added to ``secrets``.
    """
    for s in sorted(secrets, key=len, reverse=True):  # longest first: one may contain another
        if s:
            text = text.replace(s, SECRET)
    text, removed = scrub_signed_urls(text)
    for value in removed:
        learn(secrets, value)

    def jwt(m: re.Match[str]) -> str:
        learn(secrets, m.group(0))
        return SECRET

    def token(m: re.Match[str]) -> str:
        if not looks_random(m.group("token")):
            return m.group(0)
        learn(secrets, m.group("token"))
        return f"{m.group('scheme')} {SECRET}"

    def shaped(m: re.Match[str]) -> str:  # whatever the secrets scan would flag
        scheme = _SCHEME_WORD.match(m.group(0))
        learn(secrets, m.group(0)[scheme.end() if scheme else 0 :])
        return f"{scheme.group(0)}{SECRET}" if scheme else SECRET

    text = SCHEME_TOKEN_RE.sub(token, JWT_RE.sub(jwt, text))
    for _label, pattern in SECRET_PATTERNS:
        text = pattern.sub(shaped, text)
    return text


def scrub_json(doc: Any, secrets: list[str]) -> Any:
    """``doc`` with :func:`scrub_text` applied to every string (keys too); the value of an
    auth-like field (``token``, ``api_key`` ...) is replaced whole, and learnt."""
    if isinstance(doc, str):
        return scrub_text(doc, secrets)
    if isinstance(doc, list):
        return [scrub_json(v, secrets) for v in doc]
    if isinstance(doc, Mapping):
        out = {}
        for k, v in doc.items():
            if isinstance(v, str) and v.strip() and is_auth_field(str(k)):
                learn(secrets, v)
                v = scrub_header(str(k), v, secrets)  # keeps a scheme word: "Bearer <SECRET>"
            out[scrub_text(str(k), secrets)] = scrub_json(v, secrets)
        return out
    return doc


def scrub_header(name: str, value: str, secrets: list[str]) -> str:
    if name.lower() in AUTH_HEADERS or is_auth_field(name):
        m = _SCHEME_TOKEN.match(value)
        if m and SECRET not in value:
            learn(secrets, value[len(m.group(1)):])
        elif SECRET not in value:
            learn(secrets, value)
        return f"{m.group(1)} {SECRET}" if m else SECRET
    return scrub_text(value, secrets)


def _body(content: bytes) -> tuple[str, Any]:
    if not content:
        return "none", None
    try:
        return "json", json.loads(content)
    except ValueError:
        return "text", content.decode("utf-8", "replace")


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forwards to a real transport and keeps each exchange, scrubbed, for the current step."""

    def __init__(self, inner: httpx.AsyncBaseTransport, secrets: list[str], provenance: Mapping[str, str]) -> None:
        self.inner = inner
        self.secrets = secrets
        self.provenance = dict(provenance)
        self.current: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        rec_req: dict[str, Any] = {
            "method": request.method,
            "url": scrub_text(str(request.url), self.secrets),
            "headers": {
                k.lower(): scrub_header(k, v, self.secrets)
                for k, v in request.headers.items()
                if k.lower() in KEEP_REQUEST_HEADERS
            },
        }
        kind, body = _body(request.content)
        if kind == "json":
            rec_req["json"] = scrub_json(body, self.secrets)
        elif kind == "text":
            rec_req["match"] = {"json": "ignore"}  # non-JSON uploads are not compared byte for byte
        entry: dict[str, Any] = {"provenance": self.provenance, "request": rec_req}
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            name = type(exc).__name__
            if name in _RAISABLE:
                entry["response"] = {"raise": name}
                self.current.append(entry)
            raise
        await response.aread()
        kind, body = _body(response.content)
        rec_resp: dict[str, Any] = {
            "status": response.status_code,
            "headers": {
                k.lower(): scrub_text(v, self.secrets)
                for k, v in response.headers.items()
                if k.lower() in KEEP_RESPONSE_HEADERS
            },
        }
        if kind == "json":
            rec_resp["json"] = scrub_json(body, self.secrets)
        else:
            rec_resp["text"] = scrub_text(body or "", self.secrets)
        entry["response"] = rec_resp
        self.current.append(entry)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _expect(value: Any, exc: BaseException | None) -> dict[str, Any]:
    if exc is not None:
        out: dict[str, Any] = {"type": type(exc).__name__}
        if isinstance(exc, ProviderError):
            out["retryable"] = exc.retryable
            if exc.status_code is not None:
                out["status_code"] = exc.status_code
        return {"error": out}
    if isinstance(value, bool):
        return {"cancelled": value}
    if isinstance(value, JobHandle):
        return {"handle": {"provider": value.provider, "job_id": value.job_id}}
    doc = unstructure(value)
    return {"status": {"state": doc["state"], "job_id": doc["job_id"]}}


async def record_scenario(
    provider_cls: type[Provider],
    *,
    scenario: str,
    request: EditRequest,
    environ: Mapping[str, str],
    description: str = "",
    options: Mapping[str, Any] | None = None,
    base_url: str | None = None,
    cancel: bool = False,
    inner: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_polls: int = 200,
    today: _dt.date | None = None,
) -> dict[str, Any]:
    """Run submit, then status until terminal (cancelling after the first status if asked)."""
    secrets = [environ[spec.env] for spec in provider_cls.credentials if environ.get(spec.env)]
    date = (today or _dt.datetime.now(_dt.UTC).date()).isoformat()
    # The recorder's list grows with every token, signature and key it meets on the way.
    rec = RecordingTransport(inner or httpx.AsyncHTTPTransport(), list(secrets), {"source": "recorded", "date": date})
    provider = build_provider(provider_cls, environ=environ, transport=rec, options=options, base_url=base_url)
    steps: list[dict[str, Any]] = []

    async def step(op: str, call: Callable[[], Awaitable[Any]]) -> tuple[Any, BaseException | None]:
        rec.current = []
        value: Any = None
        error: BaseException | None = None
        try:
            value = await call()
        except KlingError as exc:
            error = exc
        steps.append({"op": op, "interactions": rec.current, "expect": _expect(value, error)})
        return value, error

    async def do_submit() -> JobHandle:
        check_request(provider, request)
        return await provider.submit(await provider.prepare(request))

    try:
        handle, error = await step("submit", do_submit)
        polls = 0
        while error is None and polls < max_polls:
            status, error = await step("status", lambda: provider.status(handle))
            polls += 1
            if error is not None or is_terminal(status):
                break
            if cancel and polls == 1:
                _, error = await step("cancel", lambda: provider.cancel(handle))
            await sleep(poll_interval(provider))
    finally:
        await provider.aclose()
    doc: dict[str, Any] = {
        "format": 1,
        "provider": provider_cls.name,
        "scenario": scenario,
        "description": description or f"recorded {date}",
        "request": unstructure(request),
        "settings": {"options": dict(options or {}), "base_url": base_url},
        "steps": steps,
    }
    # Once more over the whole document with everything learnt along the way: a token handed
    # out late in the run may have been echoed earlier (or in the request itself).
    scrubbed: dict[str, Any] = scrub_json(doc, rec.secrets)
    return scrubbed


def poll_interval(provider: Provider) -> float:
    """The provider's configured (else declared default) first polling delay, at least 1 s."""
    poll = provider.ctx.settings.poll or getattr(provider, "default_poll", None)
    return max(1.0, float(poll.initial)) if poll is not None else 5.0


def write_cassette(doc: Mapping[str, Any], path: str | Path, *, secrets: Sequence[str] = ()) -> Path:
    """Validate (schema, model, secrets scan) and write atomically; nothing half-written."""
    path = Path(path)
    parse_cassette(doc, path)
    findings = scan_document(doc, extra_values=secrets)
    if findings:
        raise ValidationError.single(str(path), "refusing to write a cassette holding secrets: " + "; ".join(findings))
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
