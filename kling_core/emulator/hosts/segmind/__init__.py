"""Segmind on the emulator, under ``/segmind`` (``https://api.segmind.com`` becomes ``<emulator>/segmind``).

=================================================  ================================================
``POST /segmind/v2/<slug>``                        async submit → ``{request_id, status, poll_url, status_url, response_url}``
``GET  /segmind/v2/requests/<id>/status``          ``QUEUED``/``PROCESSING``/``COMPLETED`` (200), ``FAILED`` (422)
``GET  /segmind/v2/requests/<id>``                 the result: ``{status, request_id, metrics, output}``
``GET  /segmind/v1/requests/<id>``                 the same (the submit's ``poll_url``)
``POST /segmind/v1/<slug>``                        blocking: the MP4 itself, or ``{status, output}`` with ``Accept: application/json``
``POST /segmind/upload-asset``                     ``{"data_urls": [...]}`` → ``{"file_urls": [...], "message"}``
``GET  /segmind/files/<key>/<name>``               stored files and results (public, ranges)
=================================================  ================================================

Every answer to an authorised request carries ``x-remaining-credits`` (each key starts with
1000 credits; an accepted job costs 1.3 (O1) or 3.15 (O3)). Every error is ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import mimetypes
import re
import time
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from kling_core.emulator.engine import Job
from kling_core.emulator.failures import UnknownFailure, choose
from kling_core.emulator.hosts.base import Host, HostContext
from kling_core.emulator.hosts.segmind import wire
from kling_core.emulator.storage import safe_name

V1_WAIT = 600.0  # how long a blocking v1 call waits before Segmind's 504
_DATA_URL = re.compile(r"^data:([\w.+/-]+)?(?:;[\w=.+-]+)*?;base64,(.*)$", re.S)


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=headers)


class SegmindHost(Host):
    name: ClassVar[str] = "segmind"

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(ctx)
        self.credits: dict[str, float] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _key(self, request: Request) -> str | None:
        return (request.headers.get("x-api-key") or "").strip() or None

    def authorise(self, request: Request) -> Response | None:
        """None for a well-formed ``x-api-key`` (one of the configured keys, if any); else Segmind's 401."""
        raw = request.headers.get("x-api-key")
        key = (raw or "").strip()
        if raw is None or not key:
            self.note(request, "no x-api-key header")
            return _json(wire.error(wire.UNAUTHORIZED_MISSING), 401)
        if any(c.isspace() or not c.isprintable() for c in key) or len(key) > 512:
            self.note(request, "malformed x-api-key")
            return _json(wire.error(wire.UNAUTHORIZED_BAD), 401)
        if self.ctx.host.keys and key not in self.ctx.host.keys:
            self.note(request, "a key that is not configured")
            return _json(wire.error(wire.UNAUTHORIZED_BAD), 401)
        return None

    def credit_headers(self, request: Request) -> dict[str, str]:
        key = self._key(request) or ""
        return {"x-remaining-credits": f"{self.credits.get(key, wire.START_CREDITS):.2f}"}

    def _charge(self, request: Request, model: str) -> None:
        key = self._key(request) or ""
        self.credits[key] = round(self.credits.get(key, wire.START_CREDITS) - wire.COSTS.get(model, 1.0), 2)

    # -- routing -------------------------------------------------------------------------------
    def disconnected(self, request: Request) -> Response:
        return _json(wire.error("Client disconnected"), 499)

    def internal_error(self, request: Request) -> Response:
        return _json(wire.error("Internal Server Error"), 500)

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        return _json(wire.error("Method Not Allowed"), 405, {"allow": allowed})

    async def dispatch(self, request: Request) -> Response:
        s = self.segments(request)
        method = "GET" if request.method == "HEAD" else request.method
        if len(s) == 3 and s[0] == "files":
            return await self.only(request, method, "GET", lambda: self.file(s[1], s[2]))
        if s == ["upload-asset"]:
            return await self.only(request, method, "POST", lambda: self.upload_asset(request))
        if len(s) == 2 and s[0] in ("v1", "v2") and s[1] != "requests":
            version, slug = s
            return await self.only(request, method, "POST", lambda: self.submit(request, slug, version))
        if len(s) >= 3 and s[0] in ("v1", "v2") and s[1] == "requests":
            rid, tail = s[2], s[3:]
            if tail == [] or (tail == ["status"] and s[0] == "v2"):
                return await self.only(request, method, "GET",
                                       lambda: self.status(request, rid, result=not tail))
        self.note(request, "unknown path")
        return _json(wire.error("Not Found"), 404)

    async def _read_body(self, request: Request, credits: dict[str, str]) -> tuple[Any, Response | None]:
        """(the parsed JSON body, None), or (None, Segmind's 413/400) when it cannot be read."""
        return await self.read_body(
            request, lambda: _json(wire.error("Request body too large"), 413, credits),
            lambda exc: _json(wire.error(f"Invalid JSON body: {exc.message}"), 400, credits))

    # -- submit (v2 async, v1 blocking) ------------------------------------------------------------
    async def submit(self, request: Request, slug: str, version: str) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        credits = self.credit_headers(request)
        endpoint = wire.ENDPOINTS.get(slug)
        if endpoint is None:
            self.note(request, f"unknown model {slug[:60]!r}")
            return _json(wire.error("Model not found"), 404, credits)
        ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            self.note(request, f"content type {ctype[:40]!r}")
            return _json(wire.error("Invalid content type"), 406, credits)  # [3P]
        body, refused = await self._read_body(request, credits)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return _json(wire.error("Request body must be a JSON object"), 400, credits)
        model, edit_mode = endpoint
        intake, problems = wire.validate(body, model, edit_mode)
        fail: str | None = None
        if not problems:
            try:
                intake["prompt"], fail = choose(intake["prompt"], request.headers, self.ctx.host.fail, self.name)
            except UnknownFailure as exc:
                return _json(wire.error(str(exc)), 400, credits)
            if not intake["prompt"].strip():
                problems = ["Prompt is Mandatory and must be string"]
        if fail in wire.SUBMIT_FAILURES:
            status, message = wire.SUBMIT_FAILURES[fail]
            headers = dict(credits)
            if fail == "rate_limited":
                retry = self.ctx.settings.retry_after
                reset = dt.datetime.fromtimestamp(time.time() + retry, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                headers.update({"x-rate-limit-reset-at-utc": reset, "retry-after": str(max(1, round(retry)))})
            self.note(request, f"scripted {fail}")
            return _json(wire.error(message), status, headers)
        if problems and version == "v1":
            self.note(request, f"{len(problems)} input problem(s)")
            return _json(wire.error("; ".join(problems)), 400, credits)
        job = Job(id=self.engine.new_id(), host="segmind", app=slug, endpoint=slug, intake=intake,
                  submitted_at=time.time(), fail=fail, user=self._key(request) or "", origin=self.base(request))
        if problems:  # Segmind's media endpoints validate at run time: accepted, then FAILED [3P]
            job.problems = [{"field": "body", "type": "validation_error", "message": p, "ctx": None}
                            for p in problems]
        self._charge(request, model)
        self.engine.submit(job)
        self.note(request, f"request_id={job.id}" + (f" fail={fail}" if fail else "")
                  + (f" {len(problems)} input problem(s)" if problems else ""))
        credits = self.credit_headers(request)
        if version == "v1":
            return await self._blocking(request, job, credits)
        root = f"{self.base(request)}/v2/requests/{job.id}"
        return _json({"request_id": job.id, "status": "QUEUED",
                      "poll_url": f"{self.base(request)}/v1/requests/{job.id}",
                      "status_url": f"{root}/status", "response_url": root}, 200, credits)

    async def _blocking(self, request: Request, job: Job, credits: dict[str, str]) -> Response:
        wait = self.ctx.settings.queue_seconds + self.ctx.settings.run_seconds if job.fail == "timeout" else V1_WAIT
        try:
            await asyncio.wait_for(self.engine.wait(job), wait)
        except TimeoutError:
            self.engine.cancel(job)
            return _json(wire.error("Gateway Timeout"), 504, credits)
        if job.output is None:
            status, message = self._failure(job)
            return _json(wire.error(message), 400 if status == 422 else status, credits)
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "video/" not in accept:
            return _json({"status": "COMPLETED", "output": self._output_url(request, job)}, 200, credits)
        path = self.engine.storage.find(job.output["key"], job.output["name"])
        if path is None:
            return _json(wire.error("Internal Server Error"), 500, credits)
        return FileResponse(path, media_type="video/mp4", headers=credits)

    # -- status and result -------------------------------------------------------------------------
    def _output_url(self, request: Request, job: Job) -> str:
        assert job.output is not None
        return f"{self.base(request)}/files/{job.output['key']}/{job.output['name']}"

    def _failure(self, job: Job) -> tuple[int, str]:
        """(status, message) of a finished job that has no output."""
        if job.state == "cancelled":
            return 422, "Request was cancelled"
        if job.problems:
            return 422, "; ".join(p["message"] if p["field"] == "body" else f"{wire.field_name(p['field'])}: "
                                  f"{p['message']}" for p in job.problems)
        if job.error in wire.JOB_FAILURE_MESSAGES:
            return 422, wire.JOB_FAILURE_MESSAGES[job.error]
        return 500, job.error_message or "Internal Server Error"

    @staticmethod
    def _metrics(job: Job) -> dict[str, float]:
        if job.started_at is None:
            return {}
        queue = job.started_at - job.submitted_at
        end = job.completed_at if job.finished and job.completed_at else time.time()
        return {"inference_time": round(max(0.0, end - job.started_at), 3), "queue_time": round(queue, 3),
                "total_time": round(max(0.0, end - job.submitted_at), 3)}

    async def status(self, request: Request, request_id: str, *, result: bool) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        credits = self.credit_headers(request)
        job = self.own_job(request, request_id, "request")
        if job is None:
            return _json(wire.error(f"Request {request_id[:100]} not found"), 404, credits)
        base = self.base(request)
        urls = {"status_url": f"{base}/v2/requests/{job.id}/status", "response_url": f"{base}/v2/requests/{job.id}"}
        if not job.finished:
            state = "QUEUED" if job.state == "queued" else "PROCESSING"
            doc: dict[str, Any] = {"status": state, "request_id": job.id, **urls, "metrics": self._metrics(job)}
            if result:
                doc["output"] = None
            return _json(doc, 200, credits)
        if job.output is not None:
            doc = {"status": "COMPLETED", "request_id": job.id, "metrics": self._metrics(job)}
            if result:
                doc["output"] = self._output_url(request, job)
            return _json(doc, 200, credits)
        status, message = self._failure(job)
        doc = {"status": "FAILED", "request_id": job.id, "error": message, "metrics": self._metrics(job)}
        if result:
            doc["output"] = None
        return _json(doc, status if status != 500 else 422, credits)

    # -- files ---------------------------------------------------------------------------------------
    async def file(self, key: str, name: str) -> Response:
        path = self.engine.storage.find(key, name)
        if path is None:
            return _json(wire.error("File not found"), 404)
        return FileResponse(path, media_type=mimetypes.guess_type(name)[0] or "application/octet-stream")

    async def upload_asset(self, request: Request) -> Response:
        """Segmind's asset upload (segmind-python ``files.py``): data URLs in, file URLs out."""
        refused = self.authorise(request)
        if refused is not None:
            return refused
        credits = self.credit_headers(request)
        body, refused = await self._read_body(request, credits)
        if refused is not None:
            return refused
        urls = body.get("data_urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            return _json(wire.error("data_urls must be a non-empty list of data URLs"), 400, credits)
        out = []
        for n, url in enumerate(urls):
            m = _DATA_URL.match(url)
            if m is None:
                return _json(wire.error(f"data_urls[{n}] is not a base64 data URL"), 400, credits)
            try:
                data = base64.b64decode(m.group(2), validate=True)
            except (binascii.Error, ValueError):
                return _json(wire.error(f"data_urls[{n}] is not valid base64"), 400, credits)
            ext = mimetypes.guess_extension(m.group(1) or "") or ".bin"
            key, name = self.engine.storage.new_key(), safe_name(f"asset-{n}{ext}")

            async def chunks(blob: bytes = data) -> Any:
                yield blob

            await self.engine.storage.save_stream(key, name, chunks())
            out.append(f"{self.base(request)}/files/{key}/{name}")
        self.note(request, f"{len(out)} asset(s)")
        return _json({"file_urls": out, "message": "Files uploaded successfully"}, 200, credits)

    # -- what to tell clients --------------------------------------------------------------------
    def hints(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url,
                "kling_config": {"providers.segmind.base_url": base_url, "media.allow_private_urls": True},
                "env": {"SEGMIND_API_KEY": "any-key"},
                "requests": f"replace https://api.segmind.com with {base_url}; header x-api-key"}

    def hint_line(self, base_url: str) -> str:
        return (f"segmind  {base_url}  kling: [providers.segmind] base_url = \"{base_url}\", "
                f"[media] allow_private_urls = true, SEGMIND_API_KEY=<any>; requests/curl: "
                f"https://api.segmind.com -> {base_url} (x-api-key: <any>); uploads: POST {base_url}/upload-asset")
