"""Kling's own developer API (omni-video) on the emulator, under ``/kling``.

==============================================  ===================================================
``POST /kling/v1/videos/omni-video``             create a task (``{code, message, request_id, data}``)
``GET  /kling/v1/videos/omni-video/<id>``        query by task id or by ``external_task_id``
``GET  /kling/v1/videos/omni-video?pageNum&pageSize``  list tasks (newest first)
``GET  /kling/files/<key>/<name>``               results (public, ranges supported)
==============================================  ===================================================

Auth is ``Authorization: Bearer <JWT>``: HS256, ``iss`` = access key, ``exp`` and ``nbf``
checked against this machine's clock, signed with the secret key of a configured pair
(``keys = ["ACCESS:SECRET"]``); without configured keys any well-formed, current token passes.
Refusals are 401 with codes 1000-1004. Callbacks go to loopback ``callback_url``s when a task
ends (Kling's callback body: the bare task document), unsigned, as Kling documents none.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any, ClassVar

import jwt as pyjwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kling_core.emulator.engine import Job
from kling_core.emulator.failures import UnknownFailure, choose
from kling_core.emulator.hosts.base import Host, HostContext
from kling_core.emulator.hosts.kling import wire

TASKS = ("v1", "videos", "omni-video")
ALGORITHM = "HS256"


class KlingHost(Host):
    name: ClassVar[str] = "kling"

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(ctx)
        self.pairs: dict[str, str] = {}
        for key in ctx.host.keys:
            access, sep, secret = key.partition(":")
            if sep and access and secret:
                self.pairs[access] = secret
            else:
                ctx.log(f"kling: ignored a configured key that is not ACCESS:SECRET ({len(key)} characters)")
        self.engine.on_finish("kling", self.on_finish)

    # -- helpers ---------------------------------------------------------------------------
    def error(self, request: Request, status: int, code: int, message: str,
              headers: dict[str, str] | None = None) -> JSONResponse:
        request_id = str(uuid.uuid4())
        self.note(request, f"code={code} request_id={request_id}")
        return JSONResponse(wire.envelope(None, request_id, code, message), status_code=status, headers=headers)

    def ok(self, request: Request, data: Any) -> JSONResponse:
        request_id = str(uuid.uuid4())
        return JSONResponse(wire.envelope(data, request_id))

    def authorise(self, request: Request) -> Response | None:
        """None for a valid token; else Kling's 401 with code 1000-1004."""
        code, why = self._check_token(request.headers.get("authorization"))
        if code == 0:
            return None
        self.note(request, why)
        return self.error(request, 401, code, wire.AUTH_MESSAGES[code])

    def _check_token(self, header: str | None) -> tuple[int, str]:
        if header is None or not header.strip():
            return 1001, "no Authorization header"
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme != "Bearer" or not token or any(c.isspace() or not c.isprintable() for c in token):
            return 1002, "malformed Authorization (expected: Bearer <JWT>)"
        try:
            head = pyjwt.get_unverified_header(token)
            claims = pyjwt.decode(token, options={"verify_signature": False})
        except (pyjwt.PyJWTError, ValueError):
            return 1002, "not a JWT"
        if head.get("alg") != ALGORITHM or not isinstance(claims, dict):
            return 1002, "not an HS256 JWT"
        times = [claims.get("exp"), claims.get("nbf")]
        if not isinstance(claims.get("iss"), str) or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) for t in times):
            return 1002, "token without iss, exp or nbf"
        if self.pairs:
            secret = self.pairs.get(claims["iss"])
            if secret is None:
                return 1000, "an access key that is not configured"
            try:
                pyjwt.decode(token, secret, algorithms=[ALGORITHM], options={"verify_exp": False, "verify_nbf": False})
            except pyjwt.InvalidSignatureError:
                return 1000, "bad token signature"
            except pyjwt.PyJWTError:
                return 1002, "token refused"
        now = time.time()
        if claims["nbf"] > now:
            return 1003, f"token not valid for another {claims['nbf'] - now:.0f} s"
        if claims["exp"] <= now:
            return 1004, f"token expired {now - claims['exp']:.0f} s ago"
        return 0, ""

    # -- routing ----------------------------------------------------------------------------
    def disconnected(self, request: Request) -> Response:
        return self.error(request, 400, 1200, "Client disconnected")

    def internal_error(self, request: Request) -> Response:
        return self.error(request, 500, 5000, "Server internal error")

    async def dispatch(self, request: Request) -> Response:
        segments = self.segments(request)
        method = "GET" if request.method == "HEAD" else request.method
        if len(segments) == 3 and segments[0] == "files":
            if method != "GET":
                return self.error(request, 404, 1202, "Invalid request method")
            return self._file(request, segments[1], segments[2])
        if tuple(segments[:3]) == TASKS and len(segments) <= 4:
            if len(segments) == 3 and method == "POST":
                return await self.create(request)
            if method != "GET":
                return self.error(request, 404, 1202, "Invalid request method")
            if len(segments) == 3:
                return self.list_tasks(request)
            return self.query(request, segments[3])
        self.note(request, "unknown path")
        return self.error(request, 404, 1203, "Resource does not exist")

    def _file(self, request: Request, key: str, name: str) -> Response:
        return self.stored_file(key, name, lambda: self.error(request, 404, 1203, "Resource does not exist"))

    # -- tasks ------------------------------------------------------------------------------
    def _by_external(self, external: str) -> Job | None:
        for job in self.engine.jobs.values():
            if job.host == "kling" and job.intake.get("external_task_id") == external:
                return job
        return None

    def _in_flight(self) -> bool:
        """Whether a task of this host is unfinished (it holds a slot of the resource pack)."""
        return any(job.host == "kling" and not job.finished for job in self.engine.jobs.values())

    @staticmethod
    def _new_id() -> str:
        return str(10**17 + secrets.randbelow(9 * 10**17))  # a numeric string, as Kling's task ids

    async def create(self, request: Request) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        body, refused = await self.read_body(
            request, lambda: self.error(request, 400, 1200, "Request body too large"),
            lambda exc: self.error(request, 400, 1200, f"Invalid request parameters: {exc.message}"))
        if refused is not None:
            return refused
        try:
            intake = wire.validate(body)
        except wire.BadField as exc:
            return self.error(request, 400, exc.code, exc.message)
        try:
            intake["prompt"], fail = choose(intake["prompt"], request.headers, self.ctx.host.fail, self.name)
        except UnknownFailure as exc:
            return self.error(request, 400, 1201, str(exc))
        if not intake["prompt"].strip():
            return self.error(request, 400, 1201, "prompt is required")
        external = intake.get("external_task_id")
        if external is not None and self._by_external(external) is not None:
            return self.error(request, 400, 1201, "external_task_id already exists")
        if fail in wire.SUBMIT_FAILURES:
            status, code, message = wire.SUBMIT_FAILURES[fail]
            self.note(request, f"scripted {fail}")
            return self.error(request, status, code, message)
        if fail in wire.IN_FLIGHT_REFUSALS and self._in_flight():
            status, code, message = wire.IN_FLIGHT_REFUSALS[fail]
            self.note(request, f"scripted {fail}")
            return self.error(request, status, code, message)
        job = Job(id=self._new_id(), host="kling", app="omni-video", endpoint=intake["model_name"], intake=intake,
                  submitted_at=time.time(), fail=fail, webhook_url=intake.get("callback_url"),
                  origin=self.base(request))
        self.engine.submit(job)
        self.note(request, f"task_id={job.id}" + (f" fail={fail}" if fail else ""))
        return self.ok(request, self.task_doc(job, brief=True))

    def query(self, request: Request, ident: str) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        job = self.engine.get(ident)
        if job is None or job.host != "kling":
            job = self._by_external(ident)
        if job is None:
            self.note(request, f"unknown task {ident[:40]!r}")
            return self.error(request, 404, 1203, "Task not found")
        return self.ok(request, self.task_doc(job))

    def list_tasks(self, request: Request) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        try:
            page = int(request.query_params.get("pageNum", "1"))
            size = int(request.query_params.get("pageSize", "30"))
        except ValueError:
            return self.error(request, 400, 1201, "pageNum or pageSize value is invalid")
        if not (1 <= page <= 1000 and 1 <= size <= 500):
            return self.error(request, 400, 1201, "pageNum or pageSize value is invalid")
        jobs = sorted((j for j in self.engine.jobs.values() if j.host == "kling"), key=lambda j: -j.submitted_at)
        return self.ok(request, [self.task_doc(j) for j in jobs[(page - 1) * size: page * size]])

    # -- documents ---------------------------------------------------------------------------
    @staticmethod
    def status_of(job: Job) -> str:
        if job.state == "queued":
            return "submitted"
        if job.state == "running":
            return "processing"
        return "succeed" if job.succeeded else "failed"

    @staticmethod
    def failure_message(job: Job) -> str:
        if job.state == "cancelled":
            return "Task cancelled"
        if job.problems:
            return job.problems_text()
        if job.error in wire.JOB_FAILURE_MESSAGES:
            return wire.JOB_FAILURE_MESSAGES[job.error]
        return "Server internal error"

    def task_doc(self, job: Job, *, brief: bool = False) -> dict[str, Any]:
        status = self.status_of(job)
        updated = job.completed_at or job.started_at or job.submitted_at
        doc: dict[str, Any] = {"task_id": job.id, "task_status": status}
        info: dict[str, Any] = {}
        if job.intake.get("external_task_id"):
            info["external_task_id"] = job.intake["external_task_id"]
        doc["task_info"] = info
        doc["created_at"] = int(job.submitted_at * 1000)
        doc["updated_at"] = int(updated * 1000)
        if brief:
            return doc
        if status == "failed":
            doc["task_status_msg"] = self.failure_message(job)
        elif status == "succeed" and job.output is not None:
            out = job.output
            duration = float(out.get("duration") or 0.0)
            doc["task_status_msg"] = ""
            doc["final_unit_deduction"] = wire.units(job.intake["model"], job.intake["quality"], duration)
            doc["task_result"] = {"videos": [{"id": f"{job.id}-0", "url": f"{job.origin}/files/{out['key']}/{out['name']}",
                                              "duration": f"{duration:.1f}"}]}
            doc["watermark_info"] = {"enabled": False}
        return doc

    async def on_finish(self, job: Job) -> None:
        await self.send_callback(job, self.task_doc)

    # -- what to tell clients ----------------------------------------------------------------
    def hints(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "kling_config": {"providers.kling.base_url": base_url, "media.allow_private_urls": True},
            "env": {"KLING_ACCESS_KEY": "<access key>", "KLING_SECRET_KEY": "<secret key>"},
            "keys_note": "any well-formed HS256 token unless [hosts.kling] keys = [\"ACCESS:SECRET\"] is set",
            "requests": f"replace https://api-singapore.klingai.com with {base_url}",
        }

    def hint_line(self, base_url: str) -> str:
        return (f"kling  {base_url}  kling: [providers.kling] base_url = \"{base_url}\", [media] allow_private_urls = "
                f"true, KLING_ACCESS_KEY/KLING_SECRET_KEY (a configured ACCESS:SECRET pair, or any pair when none is); "
                f"requests/curl: replace https://api-singapore.klingai.com with {base_url}")
