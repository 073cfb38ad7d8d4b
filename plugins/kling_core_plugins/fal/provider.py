"""The fal.ai provider: fal's queue API for the Kling O1/O3 video-to-video edit.

Submit goes to ``https://queue.fal.run/<model id>``; afterwards only the status, response and
cancel URLs fal returned are used (they name the owner/app only, never the model subpath).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import attrs
import httpx

from kling_core.contract.checks import local_path
from kling_core.contract.models import EditRequest, EditResult, Timings
from kling_core.contract.status import Failed, JobError, JobStatus, Queued, Running, Succeeded
from kling_core.errors import Problem, ProviderError, ResultExpiredError
from kling_core.http import ErrorInfo, HttpProvider, host_of, try_json
from kling_core.provider import JobHandle
from kling_core.settings import CredentialSpec, PollSettings
from kling_core.uploads import replace_local_media
from kling_core_plugins.fal import wire
from kling_core_plugins.fal.endpoints import APP, CAPABILITIES, ENDPOINTS, QUEUE_BASE
from kling_core_plugins.fal.storage import STORAGE_API, FalStorage

# Request options fal understands, each sent as a documented header (providers.md §1.2).
OPTION_HEADERS: Mapping[str, str] = {
    "request_timeout": "x-fal-request-timeout",  # seconds (> 1) before fal gives up on a start
    "priority": "x-fal-queue-priority",  # normal | low
}
PRIORITIES = ("normal", "low")


class FalProvider(HttpProvider):
    name: ClassVar[str] = "fal"
    title: ClassVar[str] = "fal.ai queue API"
    credentials = (CredentialSpec("api_key", "FAL_KEY"),)
    capabilities = CAPABILITIES
    default_base_url: ClassVar[str] = QUEUE_BASE
    # (model, edit mode, quality) -> fal model id; a subclass may extend it (e.g. Kling 4.0).
    endpoints: ClassVar[Mapping[tuple[str, str, str], str]] = ENDPOINTS
    auth_header: ClassVar[str] = "authorization"
    auth_scheme: ClassVar[str] = "Key"
    credential_hosts: ClassVar[tuple[str, ...]] = ("queue.fal.run", "queue.falrun.com", httpx.URL(STORAGE_API).host)
    error_table = wire.ERROR_TABLE
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "fal-queue-submit-response.schema.json",
        "status": "fal-queue-status.schema.json",
        "result": "fal-edit-result.schema.json",
        "error": "fal-error.schema.json",
    }
    # Hosted edits take minutes: poll from 2 s, growing to 20 s.
    default_poll: ClassVar[PollSettings] = PollSettings(initial=2.0)

    def api_hosts(self) -> frozenset[str]:
        storage = self.ctx.settings.options.get("storage_url")
        extra = {httpx.URL(str(storage)).host} if storage else set()
        return super().api_hosts() | extra

    # -- checks ------------------------------------------------------------------------
    def check(self, request: EditRequest) -> list[Problem]:
        problems = []
        for key, value in request.options.items():
            if key not in OPTION_HEADERS:
                problems.append(Problem(f"options.{key}", f"unknown option for fal (known: {', '.join(OPTION_HEADERS)})"))
            elif key == "request_timeout" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 1):
                problems.append(Problem("options.request_timeout", "must be a number of seconds greater than 1"))
            elif key == "priority" and value not in PRIORITIES:
                problems.append(Problem("options.priority", f"must be one of {', '.join(PRIORITIES)}"))
        return problems

    # -- local files -----------------------------------------------------------------------
    async def prepare(self, request: EditRequest) -> EditRequest:
        """Upload local media to fal storage and put the URLs in their place."""
        if not any(local_path(ref) is not None for _field, ref in request.media()):
            return request
        return await replace_local_media(request, FalStorage(self).upload)

    # -- builders / parsers ----------------------------------------------------------------
    def endpoint(self, request: EditRequest) -> str:
        path = self.endpoints.get((request.model, request.edit_mode, request.quality))
        if path is None:
            raise ValueError(f"fal has no endpoint for {request.model} {request.edit_mode} {request.quality}")
        return path

    def request_schema(self, request: EditRequest) -> str | None:
        return "fal-kling-video-to-video-request.schema.json"

    def build_submit(self, request: EditRequest) -> httpx.Request:
        params = {"fal_webhook": request.webhook_url} if request.webhook_url else None
        headers = {OPTION_HEADERS[k]: str(v) for k, v in request.options.items() if k in OPTION_HEADERS}
        return self.make_request(
            "POST", self.url(self.endpoint(request)), json_body=wire.submit_body(request),
            params=params, headers=headers,
        )

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        doc = self.json_object(response)
        try:
            request_id, urls = wire.submit_fields(doc)
        except ValueError as exc:
            raise self.protocol_error(str(exc), response) from None
        hosts = self.api_hosts()
        for key, url in urls.items():
            if host_of(url) not in hosts:
                raise self.protocol_error(f"the {key} URL points at a host that is not fal's queue", response,
                                          job_id=request_id)
        return JobHandle(
            provider=self.name, job_id=request_id, model=request.model, client_key=request.client_key,
            urls=urls, data={"endpoint": self.endpoint(request)},
        )

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        # Status/result/cancel URLs name only the owner and app (fal's subpath rule).
        base = self.url(f"{APP}/requests/{quote(job_id, safe='')}")
        return JobHandle(
            provider=self.name, job_id=job_id, model=model,
            urls={"status": f"{base}/status", "response": base, "cancel": f"{base}/cancel"},
        )

    def _handle_url(self, handle: JobHandle, key: str) -> str:
        url = handle.urls.get(key)
        return url if url else self.resume(handle.job_id).urls[key]

    def build_status(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", self._handle_url(handle, "status"), params={"logs": "1"})

    def _queue_status(self, doc: Mapping[str, Any], handle: JobHandle, response: httpx.Response) -> JobStatus | None:
        """A queue status document; None for COMPLETED without error (the result comes next)."""
        state = doc.get("status")
        if state not in wire.QUEUE_STATES:
            raise self.protocol_error(f"unknown queue status {state!r}", response, job_id=handle.job_id)
        if state == "IN_QUEUE":
            pos = doc.get("queue_position")
            position = pos if isinstance(pos, int) and not isinstance(pos, bool) and 0 <= pos <= 2**31 else None
            return Queued(job_id=handle.job_id, provider=self.name, position=position)
        if state == "IN_PROGRESS":
            return Running(job_id=handle.job_id, provider=self.name, logs=wire.log_lines(doc))  # type: ignore[arg-type]
        error = wire.completed_error(doc)
        if error is not None:
            return Failed(job_id=handle.job_id, provider=self.name, error=error)
        return None

    def _succeeded(self, doc: Mapping[str, Any], handle: JobHandle, response: httpx.Response) -> Succeeded:
        try:
            video = wire.result_video(doc)
        except ValueError as exc:
            raise self.protocol_error(str(exc), response, job_id=handle.job_id) from None
        result = EditResult(
            video=video, job_id=handle.job_id, provider=self.name, model=handle.model or "",
            timings=Timings(submitted_at=handle.submitted_at, completed_at=self.ctx.clock()),
        )
        return Succeeded(job_id=handle.job_id, provider=self.name, result=result)

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        """A queue status body, or a result body (``{"video": ...}``)."""
        with self.shape_guard(response, job_id=handle.job_id):
            return self._parse_status(response, handle)

    def _parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        doc = self.json_object(response, job_id=handle.job_id)
        if "status" in doc:
            status = self._queue_status(doc, handle, response)
            # COMPLETED without error: done on fal's side, result not fetched yet.
            return status or Running(job_id=handle.job_id, provider=self.name, progress=100.0,
                                     logs=wire.log_lines(doc))  # type: ignore[arg-type]
        return self._succeeded(doc, handle, response)

    def error_info(self, response: httpx.Response) -> ErrorInfo:
        info = wire.error_info(try_json(response), response.headers, response.text)
        retry_after = super().error_info(response).retry_after
        return attrs.evolve(info, retry_after=retry_after)

    # -- I/O ----------------------------------------------------------------------------
    async def status(self, handle: JobHandle) -> JobStatus:
        response = await self.send_get(self.build_status(handle), phase="status", job_id=handle.job_id)
        doc = self.json_object(response, job_id=handle.job_id)
        with self.shape_guard(response, job_id=handle.job_id):
            status = self._queue_status(doc, handle, response)
        if status is not None:
            return status
        return await self._result(handle)

    async def _result(self, handle: JobHandle) -> JobStatus:
        req = self.make_request("GET", self._handle_url(handle, "response"))
        try:
            # The result GET repeats the model's own error: 400/422 there is a failed job.
            response = await self.send_get(req, phase="result", job_id=handle.job_id, accept=(400, 422))
        except ProviderError as exc:
            if exc.status_code in (404, 410):
                raise ResultExpiredError(
                    "fal no longer holds this result (kept 1 hour, or 6 minutes when large); "
                    "the job was not resubmitted",
                    provider=self.name, status_code=exc.status_code, job_id=handle.job_id,
                ) from exc
            raise
        if response.status_code in (400, 422):
            info = self.error_info(response)
            kind = wire.JOB_ERROR_KINDS.get(info.code or "") or (
                "validation" if response.status_code == 422 else "job_failed")
            error = JobError(message=info.message or "the model rejected the input", code=info.code,
                             retryable=bool(info.retryable), kind=kind)  # type: ignore[arg-type]
            return Failed(job_id=handle.job_id, provider=self.name, error=error)
        doc = self.json_object(response, job_id=handle.job_id)
        with self.shape_guard(response, job_id=handle.job_id):
            return self._succeeded(doc, handle, response)

    async def cancel(self, handle: JobHandle) -> bool:
        req = self.make_request("PUT", self._handle_url(handle, "cancel"))
        response = await self.send_get(req, phase="status", job_id=handle.job_id, accept=(400, 404, 409))
        body = try_json(response)
        state = body.get("status") if isinstance(body, Mapping) else None
        if state in wire.CANCEL_ACCEPTED:
            return True
        if state in wire.CANCEL_TOO_LATE:
            return False
        if state == "NOT_FOUND" or response.status_code == 404:
            raise ProviderError("fal does not know this request (or it expired)", provider=self.name,
                                status_code=response.status_code, code="NOT_FOUND", job_id=handle.job_id)
        if response.is_success:
            raise self.protocol_error(f"unknown cancel answer {state!r}", response, job_id=handle.job_id)
        raise self.map_error(response, job_id=handle.job_id)
