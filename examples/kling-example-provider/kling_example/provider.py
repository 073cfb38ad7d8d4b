"""ExampleProvider: Kling O1/O3 edits through the Example Video API's ``/v1/edits``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest, EditResult, OutputVideo
from kling_core.contract.prompt import render_prompt, spell_snake
from kling_core.contract.status import Cancelled, Failed, JobStatus, Queued, Running, Succeeded
from kling_core.http import ErrorInfo, HttpProvider, clip, parse_retry_after, try_json
from kling_core.provider import JobHandle
from kling_core.settings import CredentialSpec
from kling_example import wire

_MODEL = {
    "edit_modes": ("edit",),  # the API documents no reference mode
    "qualities": ("std", "pro"),
    "max_references": 4,
    "max_images": 4,
    "accepts_elements": False,
}


class ExampleProvider(HttpProvider):
    name: ClassVar[str] = "example"
    title: ClassVar[str] = "Example Video API (worked plugin example)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (CredentialSpec("api_key", "EXAMPLE_VIDEO_API_KEY"),)
    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
        models=(
            ModelCapabilities(model="kling-o1", **_MODEL),  # type: ignore[arg-type]
            ModelCapabilities(model="kling-o3", **_MODEL),  # type: ignore[arg-type]
        ),
        can_cancel=True,
        accepts_local_files=False,  # the API fetches media by URL only
        reports_progress=True,
    )
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    auth_header: ClassVar[str] = "authorization"
    auth_scheme: ClassVar[str] = "Bearer"
    error_table = wire.ERRORS
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "example-edit-response.schema.json",
        "status": "example-edit-response.schema.json",
        "error": "example-error-response.schema.json",
    }
    cassette_dir: ClassVar[Path] = Path(__file__).parent / "cassettes"

    def request_schema(self, request: EditRequest) -> str | None:
        return "example-edit-request.schema.json"

    # -- builders ----------------------------------------------------------------------
    def build_submit(self, request: EditRequest) -> httpx.Request:
        body: dict[str, Any] = {
            "model": wire.MODELS[request.model],
            "prompt": render_prompt(request.prompt, spell_snake),
            "source_video_url": request.video,
            "quality": wire.QUALITIES[request.quality],
            "keep_audio": request.keep_audio,
        }
        if request.images:
            body["reference_image_urls"] = list(request.images)
        if request.client_key:
            body["client_reference"] = request.client_key
        return self.make_request("POST", self.url(wire.EDITS_PATH), json_body=body)

    def build_status(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", self.url(f"{wire.EDITS_PATH}/{quote(handle.job_id, safe='')}"))

    async def cancel(self, handle: JobHandle) -> bool:
        request = self.make_request("POST", self.url(f"{wire.EDITS_PATH}/{quote(handle.job_id, safe='')}/cancel"))
        # Cancelling twice is harmless, so transient failures are retried like a status GET.
        response = await self.send_get(request, phase="status", job_id=handle.job_id, accept=(409,))
        return response.status_code != 409  # 409 not_cancellable: the edit already finished

    # -- parsers -----------------------------------------------------------------------
    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        body = self.json_object(response)
        job_id = body.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise self.protocol_error("the submit answer has no edit id", response)
        return JobHandle(provider=self.name, job_id=job_id, model=request.model, client_key=request.client_key)

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        body = self.json_object(response, job_id=handle.job_id)
        state = wire.STATES.get(str(body.get("status")))
        job_id = handle.job_id
        if state is None:
            raise self.protocol_error(f"unknown edit status {body.get('status')!r}", response, job_id=job_id)
        if state == "queued":
            return Queued(job_id, self.name, position=_int_in(body.get("queue_position"), 0, 2**31))
        if state == "running":
            progress = body.get("progress")
            ok = isinstance(progress, (int, float)) and not isinstance(progress, bool) and 0 <= progress <= 100
            return Running(job_id, self.name, progress=float(progress) if ok else None)  # type: ignore[arg-type]
        if state == "cancelled":
            return Cancelled(job_id, self.name)
        if state == "failed":
            error = body.get("error")
            code = error.get("code") if isinstance(error, Mapping) else None
            message = error.get("message") if isinstance(error, Mapping) else None
            return Failed(job_id, self.name, wire.job_error(
                code if isinstance(code, str) else None,
                clip(message) if isinstance(message, str) else "the edit failed",
            ))
        output = body.get("output")
        url = output.get("url") if isinstance(output, Mapping) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise self.protocol_error("a succeeded edit without output.url", response, job_id=job_id)
        size = output.get("size_bytes") if isinstance(output, Mapping) else None
        return Succeeded(job_id, self.name, EditResult(
            video=OutputVideo(url=url, file_size=_int_in(size, 0, 2**63)),
            job_id=job_id,
            provider=self.name,
            model=handle.model or "kling-o1",
        ))

    def error_info(self, response: httpx.Response) -> ErrorInfo:
        body = try_json(response)
        error = body.get("error") if isinstance(body, Mapping) else None
        code = error.get("code") if isinstance(error, Mapping) else None
        message = error.get("message") if isinstance(error, Mapping) else None
        return ErrorInfo(
            message=clip(message) if isinstance(message, str) else "",
            code=code if isinstance(code, str) else None,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        return JobHandle(provider=self.name, job_id=job_id, model=model or "kling-o1")


def _int_in(value: object, lo: int, hi: int) -> int | None:
    """An optional integer detail the host reports; dropped when absent or out of range."""
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return value
    return None
