"""fal's queue API (submit, status, result, cancel), its synchronous run endpoint and webhooks.

Shapes per providers.md §1.2–1.7 and the fal cassettes: submit answers 200 with the three
URLs (owner/app only, never the model subpath); status answers 202 while ``IN_QUEUE`` /
``IN_PROGRESS`` and 200 once ``COMPLETED``; the result GET repeats the model's own error
(422 ``detail`` list) for a failed job; cancel is a PUT answering ``CANCELLATION_REQUESTED``
(202), ``ALREADY_COMPLETED`` (400) or ``NOT_FOUND`` (404). The status stream sends the same
status document as server-sent events, one per change, and ends after ``COMPLETED``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from kling_core.asgi_body import BodyTooLarge
from kling_core.emulator.engine import Job
from kling_core.emulator.failures import UnknownFailure, choose
from kling_core.emulator.hosts.base import BadJson, read_json
from kling_core.emulator.hosts.fal import wire
from kling_core.emulator.webhooks import deliver

if TYPE_CHECKING:
    from kling_core.emulator.hosts.fal import FalHost

FAL_LEVELS = {"INFO": "INFO", "WARN": "WARN", "ERROR": "ERROR"}
STREAM_STEP = 0.1  # seconds between looks at a streamed job's state (its end is sent at once)
KEEP_ALIVE = 15.0  # seconds of quiet before a comment line keeps the stream open


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=headers)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Queue:
    def __init__(self, host: FalHost) -> None:
        self.host = host
        self.engine = host.engine

    # -- URLs --------------------------------------------------------------------------------
    @staticmethod
    def urls(base: str, job: Job) -> dict[str, str]:
        root = f"{base}/{job.app}/requests/{job.id}"
        return {"request_id": job.id, "response_url": root, "status_url": f"{root}/status",
                "cancel_url": f"{root}/cancel"}

    # -- submit and run ------------------------------------------------------------------------
    async def _accept(self, request: Request, model_id: str) -> Job | Response:
        """Authorise, read and check a submit; the new job, or the error response."""
        host = self.host
        refused = host.authorise(request)
        if refused is not None:
            return refused
        endpoint = wire.ENDPOINTS.get(model_id)
        if endpoint is None:
            host.note(request, f"unknown model {model_id!r}")
            return _json({"detail": "Not Found"}, 404)
        problem = self._header_problem(request)
        if problem is not None:
            return problem
        webhook = request.query_params.get("fal_webhook")
        if webhook is not None and urlsplit(webhook).scheme.lower() not in ("http", "https"):
            return _json(wire.request_error("fal_webhook must be an http(s) URL", "bad_request"), 400,
                         {"x-fal-error-type": "bad_request"})
        try:
            body = await read_json(request, host.ctx.settings.max_json_bytes)
        except BodyTooLarge:
            return _json(wire.request_error("Request body too large", "bad_request"), 413,
                         {"x-fal-error-type": "bad_request"})
        except BadJson as exc:
            return _json({"detail": [wire.detail(["body", exc.position], "JSON decode error", "json_invalid",
                                                 ctx={"error": exc.message}, input_={})]}, 422)
        intake, problems = wire.validate(body, endpoint)
        if intake is None:
            host.note(request, f"{len(problems)} input problem(s)")
            return _json({"detail": problems}, 422, {"x-fal-retryable": "false"})
        try:
            intake["prompt"], fail = choose(intake["prompt"], request.headers, host.ctx.host.fail, host.name)
        except UnknownFailure as exc:
            return _json(wire.request_error(str(exc), "bad_request"), 400, {"x-fal-error-type": "bad_request"})
        if not intake["prompt"]:
            return _json({"detail": [wire.detail(["body", "prompt"], "String should have at least 1 character",
                                                 "string_too_short", ctx={"min_length": 1})]}, 422)
        if fail == "rate_limited":
            host.note(request, "scripted rate_limited")
            retry = host.ctx.settings.retry_after
            return _json(wire.RATE_LIMITED, 429, {"retry-after": str(math.ceil(retry))})
        if fail in wire.SUBMIT_FAILURE_RESPONSES:
            status, doc, headers = wire.SUBMIT_FAILURE_RESPONSES[fail]
            host.note(request, f"scripted {fail}")
            return _json(doc, status, headers)
        job = Job(id=self.engine.new_id(), host="fal", app=wire.app_of(model_id), endpoint=model_id, intake=intake,
                  submitted_at=time.time(), fail=fail, webhook_url=webhook, user=host.user_of(request),
                  origin=host.base(request))
        self.engine.submit(job)
        host.note(request, f"request_id={job.id}" + (f" fail={fail}" if fail else ""))
        return job

    def _header_problem(self, request: Request) -> Response | None:
        timeout = request.headers.get("x-fal-request-timeout")
        if timeout is not None:
            try:
                ok = float(timeout) > 1 and math.isfinite(float(timeout))
            except ValueError:
                ok = False
            if not ok:
                return _json(wire.request_error("Invalid X-Fal-Request-Timeout header: must be a number of seconds "
                                                "greater than 1", "bad_request"), 400,
                             {"x-fal-error-type": "bad_request"})
        priority = request.headers.get("x-fal-queue-priority")
        if priority is not None and priority not in ("normal", "low"):
            return _json(wire.request_error("Invalid X-Fal-Queue-Priority header: must be normal or low",
                                            "bad_request"), 400, {"x-fal-error-type": "bad_request"})
        return None

    async def submit(self, request: Request, model_id: str) -> Response:
        accepted = await self._accept(request, model_id)
        if isinstance(accepted, Response):
            return accepted
        job = accepted
        doc = {"status": "IN_QUEUE", **self.urls(self.host.base(request), job), "gateway_request_id": job.id,
               "queue_position": self.engine.queue_position(job)}
        return _json(doc)

    async def run(self, request: Request, model_id: str) -> Response:
        """fal.run/<model id>: the same job, answered when it is done (no queue URLs)."""
        accepted = await self._accept(request, model_id)
        if isinstance(accepted, Response):
            return accepted
        job = await self.engine.wait(accepted)
        status, doc, headers = self.outcome(job, self.host.base(request))
        return _json(doc, status, headers)

    # -- status, result, cancel ------------------------------------------------------------------
    def _job(self, request: Request, app: str, request_id: str, missing: dict[str, Any]) -> Job | Response:
        """The caller's job, or the answer instead: refused credentials, or ``missing`` (404) for an unknown id."""
        refused = self.host.authorise(request)
        if refused is not None:
            return refused
        job = self.engine.get(request_id)
        if job is None or job.host != "fal" or job.app != app:
            self.host.note(request, f"unknown request {request_id[:40]!r}")
            return _json(missing, 404)
        return job

    def logs(self, job: Job) -> list[dict[str, Any]]:
        return [{"message": e["message"], "level": FAL_LEVELS.get(e["level"], "INFO"), "source": "USER",
                 "timestamp": _iso(e["timestamp"])} for e in job.logs]

    async def status(self, request: Request, app: str, request_id: str) -> Response:
        job = self._job(request, app, request_id, {"detail": "Request not found"})
        if isinstance(job, Response):
            return job
        with_logs = request.query_params.get("logs", "0").strip().lower() in ("1", "true", "yes")
        return _json(*self.status_doc(job, self.host.base(request), with_logs))

    async def status_stream(self, request: Request, app: str, request_id: str) -> Response:
        """The status as server-sent events: one event per change, closed after COMPLETED."""
        job = self._job(request, app, request_id, {"detail": "Request not found"})
        if isinstance(job, Response):
            return job
        with_logs = request.query_params.get("logs", "0").strip().lower() in ("1", "true", "yes")
        return StreamingResponse(self._events(job, self.host.base(request), with_logs),
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _events(self, job: Job, base: str, with_logs: bool) -> AsyncIterator[str]:
        # Each event carries the log lines since the one before (fal-js gathers them) [INF];
        # a comment line every KEEP_ALIVE seconds keeps a quiet stream open (fal's docs).
        sent_logs, last, quiet = 0, "", 0.0
        while True:
            doc, _ = self.status_doc(job, base, False)
            if with_logs:
                doc["logs"], sent_logs = self.logs(job)[sent_logs:], len(job.logs)
            key = json.dumps([doc["status"], doc.get("queue_position")])
            if key != last or doc.get("logs"):
                last, quiet = key, 0.0
                yield f"data: {json.dumps(doc)}\n\n"
            if doc["status"] == "COMPLETED":
                return
            try:  # the end is sent at once; other changes are looked for every STREAM_STEP seconds
                await asyncio.wait_for(self.engine.wait(job), STREAM_STEP)
            except TimeoutError:
                quiet += STREAM_STEP
            if quiet >= KEEP_ALIVE:
                quiet = 0.0
                yield ": keep-alive\n\n"

    def status_doc(self, job: Job, base: str, with_logs: bool) -> tuple[dict[str, Any], int]:
        urls = self.urls(base, job)
        logs = self.logs(job) if with_logs else None
        if job.state == "queued":
            return {"status": "IN_QUEUE", "queue_position": self.engine.queue_position(job), **urls,
                    "logs": logs}, 202
        if job.state == "running":
            return {"status": "IN_PROGRESS", **urls, "logs": logs}, 202
        error = error_type = None
        if job.state == "cancelled":
            error, error_type = "Request was cancelled by the client", "client_cancelled"  # [INF]
        elif job.error == "internal":
            error, error_type = job.error_message or "Runner server error", "runner_server_error"
        started = job.started_at or job.submitted_at
        metrics = {"inference_time": round(max(0.0, (job.completed_at or started) - started), 3)}
        return {"status": "COMPLETED", **urls, "logs": logs, "metrics": metrics, "error": error,
                "error_type": error_type}, 200

    def outcome(self, job: Job, base: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, body, headers) of a finished job's result, as the result GET answers it."""
        if job.state == "cancelled":
            return 499, wire.request_error("Request was cancelled by the client", "client_cancelled"), \
                {"x-fal-error-type": "client_cancelled"}
        if job.output is not None:
            out = job.output
            return 200, {"video": {"url": f"{base}/cdn/files/{out['key']}/{out['name']}", "content_type": "video/mp4",
                                   "file_name": out["name"], "file_size": out["size"]}}, {}
        if job.problems:
            details = [wire.detail(wire.field_loc(p["field"]), p["message"], p["type"], ctx=p.get("ctx"))
                       for p in job.problems]
            return 422, {"detail": details}, {"x-fal-retryable": "false"}
        if job.error in wire.JOB_FAILURE_DETAILS:
            return 422, {"detail": [wire.JOB_FAILURE_DETAILS[job.error]]}, {"x-fal-retryable": "false"}
        return 500, wire.request_error(job.error_message or "Runner server error", "runner_server_error"), \
            {"x-fal-error-type": "runner_server_error"}

    async def result(self, request: Request, app: str, request_id: str) -> Response:
        job = self._job(request, app, request_id, {"detail": "Request not found"})
        if isinstance(job, Response):
            return job
        if not job.finished:
            return _json({"detail": "Request is still in progress"}, 400)  # [INF]
        status, doc, headers = self.outcome(job, self.host.base(request))
        return _json(doc, status, headers)

    async def cancel(self, request: Request, app: str, request_id: str) -> Response:
        job = self._job(request, app, request_id, {"status": "NOT_FOUND"})
        if isinstance(job, Response):
            return job
        if self.engine.cancel(job) == "already_finished":
            return _json({"status": "ALREADY_COMPLETED"}, 400)
        return _json({"status": "CANCELLATION_REQUESTED"}, 202)

    # -- webhooks ------------------------------------------------------------------------------
    async def on_finish(self, job: Job) -> None:
        if not job.webhook_url:
            return
        status, doc, _ = self.outcome(job, job.origin)
        payload: dict[str, Any] = {"request_id": job.id, "gateway_request_id": job.id}
        if status == 200:
            payload.update(status="OK", payload=doc)
        else:
            payload.update(status="ERROR", error=f"Invalid status code: {status}", payload=doc)
        body = json.dumps(payload).encode()
        headers = self.host.ctx.signer.fal_headers(job.id, job.user, body)
        job.webhook = "pending"
        ctx = self.host.ctx
        delivered = await deliver(job.webhook_url, body, headers, attempts=ctx.settings.webhook_attempts,
                                  backoff=ctx.settings.webhook_backoff, log=lambda line: ctx.log(f"fal: {line}"))
        job.webhook = "delivered" if delivered else "failed"


def user_id(key: str) -> str:
    """A stable user id for a key (the part before ':' of an id:secret key, else a hash)."""
    if ":" in key:
        return key.split(":", 1)[0][:64]
    return "user-" + hashlib.sha256(key.encode()).hexdigest()[:16]
