"""The Segmind provider: the v2 async API by default, the v1 blocking call on request.

v2: ``POST /v2/<slug>`` → request id + status/response URLs; ``GET status_url`` until
COMPLETED (or FAILED, served with HTTP 422), then ``GET response_url`` for the output URL.
v1 (``options.api = "v1"``): one blocking POST that answers with the video itself (raw
``video/mp4``, written to the work dir) or a JSON document naming it, by content type.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import attrs
import httpx

from kling_core.contract.models import Cost, EditRequest, EditResult, OutputVideo, Timings
from kling_core.contract.status import Failed, JobError, JobStatus, Queued, Running, Succeeded
from kling_core.errors import Problem, ProviderError, ResultExpiredError
from kling_core.http import ErrorInfo, HttpProvider, clip, host_of
from kling_core.http.download import StreamIncomplete, StreamTooLarge, write_stream
from kling_core.provider import JobHandle
from kling_core.settings import CredentialSpec, PollSettings
from kling_core.uploads import upload_local_media
from kling_core_plugins.segmind import wire

APIS = ("v2", "v1")
V1_TIMEOUT = 600.0  # a blocking edit takes ~4 minutes
CHUNK = 1024 * 1024


class SegmindProvider(HttpProvider):
    name: ClassVar[str] = "segmind"
    title: ClassVar[str] = "Segmind serverless API"
    credentials = (CredentialSpec("api_key", "SEGMIND_API_KEY"),)
    capabilities = wire.CAPABILITIES
    default_base_url: ClassVar[str] = wire.API_BASE
    slugs: ClassVar[Mapping[tuple[str, str], str]] = wire.SLUGS  # (model, edit mode) -> URL slug
    auth_header: ClassVar[str] = "x-api-key"
    auth_scheme: ClassVar[str] = ""
    error_table = wire.ERROR_TABLE
    status_accept: ClassVar[tuple[int, ...]] = (422,)  # FAILED comes as HTTP 422 with a status body
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "segmind-v2-submit-response.schema.json",
        "status": "segmind-v2-status.schema.json",
        "result": "segmind-v2-result.schema.json",
        "error": "segmind-error.schema.json",
    }
    default_poll: ClassVar[PollSettings] = PollSettings(initial=2.0)

    # -- options / checks ------------------------------------------------------------
    def api_version(self, request: EditRequest | None = None) -> str:
        value = None
        if request is not None:
            value = request.options.get("api")
        if value is None:
            value = self.ctx.settings.options.get("api", "v2")
        return str(value)

    def check(self, request: EditRequest) -> list[Problem]:
        problems = []
        for key, value in request.options.items():
            if key != "api":
                problems.append(Problem(f"options.{key}", "unknown option for segmind (known: api)"))
            elif value not in APIS:
                problems.append(Problem("options.api", f"{value!r} is not one of {', '.join(APIS)}"))
        return problems

    # -- local files ----------------------------------------------------------------------
    async def prepare(self, request: EditRequest) -> EditRequest:
        """Segmind fetches media by URL: local files go through a registered uploader plugin."""
        return await upload_local_media(request, self.name)

    # -- builders / parsers ------------------------------------------------------------
    def slug(self, request: EditRequest) -> str:
        slug = self.slugs.get((request.model, request.edit_mode))
        if slug is None:
            raise ValueError(f"segmind has no endpoint for {request.model} {request.edit_mode}")
        return slug

    def request_schema(self, request: EditRequest) -> str | None:
        if request.model == "kling-o3":
            return "segmind-kling-o3-edit-request.schema.json"
        return "segmind-kling-o1-edit-request.schema.json"

    def build_submit(self, request: EditRequest) -> httpx.Request:
        version = self.api_version(request)
        req = self.make_request(
            "POST", self.url(f"{version}/{self.slug(request)}"), json_body=wire.submit_body(request),
        )
        if version == "v1":
            timeout = httpx.Timeout(max(V1_TIMEOUT, self.ctx.settings.timeout), connect=10.0)
            req.extensions["timeout"] = timeout.as_dict()
        return req

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        doc = self.json_object(response)
        request_id = doc.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise self.protocol_error("submit response lacks request_id", response)
        urls = {}
        for key in ("status_url", "response_url"):
            value = doc.get(key)
            if isinstance(value, str) and value:
                if host_of(value) not in self.api_hosts():
                    raise self.protocol_error(f"{key} points at a host that is not Segmind's API", response,
                                              job_id=request_id)
                urls[key.removesuffix("_url")] = value
        if not urls:
            urls = dict(self.resume(request_id).urls)
        data = {"api": "v2"}
        remaining = response.headers.get(wire.CREDITS_HEADER)
        if remaining is not None and wire.credits(response.headers) is not None:
            data["remaining_credits"] = remaining
        return JobHandle(provider=self.name, job_id=request_id, model=request.model,
                         client_key=request.client_key, urls=urls, data=data)

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        base = self.url(f"v2/requests/{quote(job_id, safe='')}")
        return JobHandle(provider=self.name, job_id=job_id, model=model,
                         urls={"status": f"{base}/status", "response": base}, data={"api": "v2"})

    def build_status(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", handle.urls.get("status") or self.resume(handle.job_id).urls["status"])

    def _state(self, doc: Mapping[str, Any], handle: JobHandle, response: httpx.Response) -> JobStatus | None:
        state = doc.get("status")
        if state not in wire.KNOWN_STATES:
            raise self.protocol_error(f"unknown status {state!r}", response, job_id=handle.job_id)
        if state in wire.STATES_QUEUED:
            return Queued(job_id=handle.job_id, provider=self.name)
        if state in wire.STATES_RUNNING:
            return Running(job_id=handle.job_id, provider=self.name)
        if state == wire.STATE_FAILED:
            error = doc.get("error")
            message = clip(error if isinstance(error, str) and error.strip() else "the job failed on Segmind")
            return Failed(job_id=handle.job_id, provider=self.name, error=JobError(message=message))
        return None  # COMPLETED

    def _succeeded(self, url: str, handle: JobHandle, headers: Mapping[str, str], **video: Any) -> Succeeded:
        remaining = wire.credits(headers)
        if remaining is None and "remaining_credits" in handle.data:
            remaining = wire.credits({wire.CREDITS_HEADER: handle.data["remaining_credits"]})
        result = EditResult(
            video=OutputVideo(url=url, **video), job_id=handle.job_id, provider=self.name,
            model=handle.model or "",
            timings=Timings(submitted_at=handle.submitted_at, completed_at=self.ctx.clock()),
            cost=Cost(remaining_credits=remaining) if remaining is not None else None,
        )
        return Succeeded(job_id=handle.job_id, provider=self.name, result=result)

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        """A v2 status or result document (FAILED may arrive with HTTP 422)."""
        with self.shape_guard(response, job_id=handle.job_id):
            return self._parse_status(response, handle)

    def _parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        doc = self.json_object(response, job_id=handle.job_id)
        if response.status_code == 422 and doc.get("status") != wire.STATE_FAILED:
            raise self.map_error(response, job_id=handle.job_id)
        url = wire.output_url(doc)
        if doc.get("status") in (wire.STATE_COMPLETED, None) and url is not None:
            return self._succeeded(url, handle, response.headers)
        status = self._state(doc, handle, response)
        return status or Running(job_id=handle.job_id, provider=self.name, progress=100.0)

    def error_info(self, response: httpx.Response) -> ErrorInfo:
        info = super().error_info(response)
        if info.retry_after is None and response.status_code == 429:
            # Segmind names the reset time instead of sending Retry-After.
            wait = wire.reset_wait(response.headers.get(wire.RESET_HEADER), self.ctx.clock())
            if wait is not None:
                info = attrs.evolve(info, retry_after=wait)
        return info

    # -- I/O ------------------------------------------------------------------------------
    async def submit(self, request: EditRequest) -> JobHandle:
        if self.api_version(request) == "v1":
            return await self._submit_v1(request)
        return await super().submit(request)

    async def status(self, handle: JobHandle) -> JobStatus:
        if handle.data.get("api") == "v1":
            return self._v1_status(handle)
        try:
            response = await self.send_get(self.build_status(handle), phase="status", job_id=handle.job_id,
                                           accept=self.status_accept)
        except ProviderError as exc:
            if exc.status_code == 404:
                raise ResultExpiredError(
                    "Segmind does not know this request: status and results are kept 1 hour after "
                    "submission (or the id is wrong); it was not resubmitted",
                    provider=self.name, status_code=404, job_id=handle.job_id,
                ) from exc
            raise
        status = self.parse_status(response, handle)
        if not (isinstance(status, Running) and status.progress == 100.0):
            return status
        req = self.make_request("GET", handle.urls.get("response") or self.resume(handle.job_id).urls["response"])
        try:
            response = await self.send_get(req, phase="result", job_id=handle.job_id, accept=self.status_accept)
        except ProviderError as exc:
            if exc.status_code in (404, 410):
                raise ResultExpiredError(
                    "Segmind no longer holds this result (kept 1 hour after submission); not resubmitted",
                    provider=self.name, status_code=exc.status_code, job_id=handle.job_id,
                ) from exc
            raise
        result = self.parse_status(response, handle)
        if isinstance(result, Running):
            raise self.protocol_error("the result document names no output video", response, job_id=handle.job_id)
        return result

    # -- v1 (blocking) --------------------------------------------------------------------
    def _work_dir(self) -> Path:
        base = self.ctx.work_dir or (Path(self.ctx.media.work_dir) if self.ctx.media.work_dir else None)
        d = base if base is not None else Path(tempfile.gettempdir()) / "kling-segmind"
        d.mkdir(parents=True, exist_ok=True)
        return d

    async def _submit_v1(self, request: EditRequest) -> JobHandle:
        job_id = request.client_key or f"v1-{uuid.uuid4().hex}"
        response = await self.send_submit(self.build_submit(request), client_key=request.client_key, stream=True)
        data = {"api": "v1"}
        try:
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype.startswith("video/") or ctype == "application/octet-stream":
                dest = self._work_dir() / f"segmind-{job_id}.mp4"
                size = await self._save_body(response, dest, request.client_key)
                data.update(url=dest.as_uri(), file_size=str(size), content_type=ctype if ctype.startswith("video/") else "video/mp4")
            else:
                await response.aread()
                doc = self.json_object(response)
                url = wire.output_url(doc)
                if url is None:
                    raise ProviderError(
                        "the v1 answer names no output video; the job ran, check your Segmind dashboard",
                        provider=self.name, status_code=response.status_code, job_id=job_id,
                    )
                data["url"] = url
        except httpx.TransportError as exc:
            from kling_core.errors import SubmitUncertainError

            raise SubmitUncertainError(
                f"the v1 answer was cut off ({type(exc).__name__}); the job ran but its video was lost",
                provider=self.name, client_key=request.client_key,
            ) from exc
        finally:
            await response.aclose()
        remaining = response.headers.get(wire.CREDITS_HEADER)
        if remaining is not None and wire.credits(response.headers) is not None:
            data["remaining_credits"] = remaining
        return JobHandle(provider=self.name, job_id=job_id, model=request.model, client_key=request.client_key,
                         submitted_at=self.ctx.clock(), data=data)

    async def _save_body(self, response: httpx.Response, dest: Path, client_key: str | None) -> int:
        try:
            return await write_stream(response, dest, cap=self.ctx.media.max_download_bytes)
        except StreamTooLarge as exc:
            raise ProviderError(f"the v1 video: {exc}", provider=self.name) from None
        except StreamIncomplete as exc:
            raise httpx.RemoteProtocolError(f"the v1 video was {exc}") from None

    def _v1_status(self, handle: JobHandle) -> JobStatus:
        url = handle.data.get("url")
        if not url:
            raise ProviderError("this v1 job has no stored result", provider=self.name, job_id=handle.job_id)
        size = handle.data.get("file_size")
        video: dict[str, Any] = {"file_size": int(size)} if size and size.isdigit() else {}
        if handle.data.get("content_type"):
            video["content_type"] = handle.data["content_type"]
        headers = {wire.CREDITS_HEADER: handle.data["remaining_credits"]} if "remaining_credits" in handle.data else {}
        return self._succeeded(url, handle, headers, **video)
