"""Unifically on the emulator, under ``/unifically``.

=======================================  ==========================================================
``POST /unifically/v1/tasks``            create a task (``{model, input, callback_url?, dry_run?}``);
                                         ``dry_run: true`` validates and prices, creating nothing
``GET  /unifically/v1/tasks/<task_id>``  the task: ``pending`` / ``processing`` / ``completed``
                                         (``output.video_url``) / ``failed`` (``error``)
``GET  /unifically/files/<key>/<name>``  results (public, as Unifically's CDN URLs are)
=======================================  ==========================================================

Every answer is the ``{"code", "success", "data"}`` envelope; errors carry the documented
(HTTP status, ``data.code``) pairs (see ``wire``). Callbacks go to loopback ``callback_url``s
when a task ends, unsigned, as Unifically documents them.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kling_core.emulator.engine import Job
from kling_core.emulator.failures import UnknownFailure, choose
from kling_core.emulator.hosts.base import BadJson, Host, HostContext
from kling_core.emulator.hosts.unifically import wire

NAME = "unifically"
UPSTREAM = "https://api.unifically.com"  # the real API this host stands in for


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=headers)


class UnificallyHost(Host):
    name: ClassVar[str] = NAME

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(ctx)
        self.engine.on_finish(NAME, self.on_finish)

    def authorise(self, request: Request) -> Response | None:
        """None for a well-formed ``Authorization: Bearer <key>`` (a configured key, if any)."""
        if self.key_refusal(request, "Bearer") is None:
            return None
        return _json(wire.AUTH_FAILED, 401)

    # -- routing ------------------------------------------------------------------------------
    def disconnected(self, request: Request) -> Response:
        return _json(wire.error(499, "client_disconnected", "Client disconnected"), 499)

    def internal_error(self, request: Request) -> Response:
        return _json(wire.error(500, "internal_error", "Internal server error"), 500)

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        return _json(wire.error(405, "method_not_allowed", f"Method {request.method} not allowed"), 405,
                     {"allow": allowed})

    async def dispatch(self, request: Request) -> Response:
        s = self.segments(request)
        method = "GET" if request.method == "HEAD" and s[:1] == ["files"] else request.method
        if s == ["v1", "tasks"]:
            return await self.only(request, method, "POST", lambda: self.submit(request))
        if len(s) == 3 and s[:2] == ["v1", "tasks"]:
            return await self.only(request, method, "GET", lambda: self.task(request, s[2]))
        if len(s) == 3 and s[0] == "files":
            return await self.only(request, method, "GET", lambda: self.file(s[1], s[2]))
        self.note(request, "unknown path")
        return _json(wire.NOT_FOUND, 404)

    # -- tasks ----------------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        body, refused = await self.read_body(request, lambda: _json(wire.TOO_LARGE, 413),
                                             lambda exc: self._bad_json(request, exc))
        if refused is not None:
            return refused
        task, problems = wire.validate(body)
        if task is None:
            self.note(request, f"{len(problems)} input problem(s)")
            return _json(wire.error(422, "validation_error", "; ".join(problems), errors=problems), 422)
        intake = task["intake"]
        try:
            intake["prompt"], fail = choose(intake["prompt"], request.headers, self.ctx.host.fail, self.name)
        except UnknownFailure as exc:
            return _json(wire.error(422, "validation_error", str(exc)), 422)
        if not intake["prompt"]:
            return _json(wire.error(422, "validation_error", "Parameter prompt must not be empty"), 422)
        if task["dry_run"]:
            self.note(request, "dry run")
            price = wire.PRICES[(task["model"], intake["quality"])]
            return _json(wire.envelope({"valid": True, "estimated_cost": price, "currency": "USD"}))
        if fail == "rate_limited":
            self.note(request, "scripted rate_limited")
            return _json(wire.RATE_LIMITED, 429, {"retry-after": str(math.ceil(self.ctx.settings.retry_after))})
        if fail is not None and fail in wire.SUBMIT_FAILURES:
            self.note(request, f"scripted {fail}")
            status, doc = wire.SUBMIT_FAILURES[fail]
            return _json(doc, status)
        job = Job(id=self.engine.new_id().replace("-", ""), host=NAME, app=task["model"], endpoint=task["model"],
                  intake=intake, submitted_at=time.time(), fail=fail, webhook_url=task["callback_url"],
                  origin=self.base(request))
        self.engine.submit(job)
        self.note(request, f"task_id={job.id}" + (f" fail={fail}" if fail else ""))
        return _json(wire.envelope({"task_id": job.id, "status": "pending"}))

    def _bad_json(self, request: Request, exc: BadJson) -> Response:
        self.note(request, "body is not JSON")
        return _json(wire.error(422, "validation_error", f"Invalid JSON body: {exc.message} "
                                                         f"(at character {exc.position})"), 422)

    def task_doc(self, job: Job) -> dict[str, Any]:
        doc: dict[str, Any] = {"task_id": job.id, "model": job.endpoint}
        if job.state == "queued":
            doc["status"] = "pending"
        elif job.state == "running":
            doc["status"] = "processing"
        elif job.output is not None:
            out = job.output
            doc.update(status="completed", output={"video_url": f"{job.origin}/files/{out['key']}/{out['name']}"})
        else:
            code, message = self.failure(job)
            doc.update(status="failed", output={}, error={"message": message, "code": code})
        return doc

    @staticmethod
    def failure(job: Job) -> tuple[str, str]:
        """(data.error.code, message) of a failed task."""
        if job.state == "cancelled":
            return "generation_failed", "Task was cancelled"
        if job.problems:
            return "validation_error", job.problems_text(wire.input_field)
        if job.error is not None and job.error in wire.JOB_FAILURES:
            return wire.JOB_FAILURES[job.error]
        return "generation_failed", f"Generation failed: {job.error_message or 'internal error'}"

    async def task(self, request: Request, task_id: str) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        job = self.own_job(request, task_id, "task")
        if job is None:
            return _json(wire.TASK_NOT_FOUND, 404)
        return _json(wire.envelope(self.task_doc(job)))

    async def file(self, key: str, name: str) -> Response:
        return self.stored_file(key, name, lambda: _json(wire.error(404, "not_found", "File not found"), 404))

    # -- callbacks --------------------------------------------------------------------------------
    def callback_doc(self, job: Job) -> dict[str, Any]:
        """The unsigned callback: ``task_id``, ``status``, ``data.video_url`` or ``error_message``."""
        doc = self.task_doc(job)
        out: dict[str, Any] = {"task_id": job.id, "status": doc["status"]}
        if doc["status"] == "completed":
            out["data"] = {"video_url": doc["output"]["video_url"]}
        else:
            out["error_message"] = doc["error"]["message"]
        return out

    async def on_finish(self, job: Job) -> None:
        await self.send_callback(job, self.callback_doc)

    # -- what to tell clients -----------------------------------------------------------------
    def hints(self, base_url: str) -> dict[str, Any]:
        return self.bearer_hints(base_url, "UNIFICALLY_API_KEY", UPSTREAM, "v1/tasks")

    def hint_line(self, base_url: str) -> str:
        return self.bearer_hint_line(base_url, "UNIFICALLY_API_KEY", UPSTREAM, "v1/tasks")
