"""The Unifically provider: Kling O1 edits through Unifically's unified ``/v1/tasks`` API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus
from kling_core.errors import ProviderError
from kling_core.http import HttpProvider, parse_retry_after, try_json
from kling_core.provider import JobHandle
from kling_core.settings import CredentialSpec, PollSettings
from kling_core.uploads import upload_local_media
from kling_core_plugins.unifically import wire

CAPABILITIES = ProviderCapabilities(
    models=(
        ModelCapabilities(
            model="kling-o1",
            edit_modes=tuple(wire.VIDEO_MODES),
            qualities=("std", "pro"),
            max_references=wire.REFERENCE_POOL,
            max_images=4,
            max_elements=4,
            element_reference_images=(1, 3),  # + the frontal image = the host's 1–4 image_urls
            accepts_elements=True,
            accepts_aspect_ratio=True,  # documented input (16:9, 9:16, 1:1); sent only when given
            accepts_duration=False,  # "output length follows input length"
            element_name_max=wire.ELEMENT_NAME_MAX,
            element_description_max=wire.ELEMENT_DESCRIPTION_MAX,
            endpoints={"model": wire.MODEL_IDS["kling-o1"]},
        ),
    ),
    can_cancel=False,  # no cancel endpoint documented
    accepts_webhook=True,
    accepts_local_files=False,  # URLs only: no upload API documented
    supports_dry_run=True,
    reports_progress=False,
    reports_cost=False,
)


class UnificallyProvider(HttpProvider):
    name: ClassVar[str] = "unifically"
    title: ClassVar[str] = "Unifically (Kling O1 edit via /v1/tasks)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (CredentialSpec("api_key", "UNIFICALLY_API_KEY"),)
    capabilities: ClassVar[ProviderCapabilities] = CAPABILITIES
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    default_poll: ClassVar[PollSettings] = PollSettings(initial=5.0, factor=1.5, max=30.0)
    auth_header: ClassVar[str] = "authorization"
    auth_scheme: ClassVar[str] = "Bearer"
    error_table = wire.ERRORS
    # A failed task may come back with a 400 and its task document (the legacy routes did).
    status_accept: ClassVar[tuple[int, ...]] = (400,)
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "unifically-task-submit-response.schema.json",
        "status": "unifically-task-status-response.schema.json",
        "error": "unifically-error-response.schema.json",
        "dry_run": "unifically-dry-run-response.schema.json",
    }

    async def prepare(self, request: EditRequest) -> EditRequest:
        """The host fetches media by URL: local files go through an uploader plugin, if any."""
        return await upload_local_media(request, self.name)

    # -- builders / parsers ------------------------------------------------------------
    def request_schema(self, request: EditRequest) -> str | None:
        return "unifically-task-request.schema.json"

    def build_submit(self, request: EditRequest) -> httpx.Request:
        return self.make_request("POST", self.url(wire.TASKS_PATH), json_body=wire.build_task(request))

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        return JobHandle(
            provider=self.name,
            job_id=wire.parse_task_id(try_json(response)),
            model=request.model,
            client_key=request.client_key,
        )

    async def send_submit(self, request: httpx.Request, *, client_key: str | None, **kw: Any) -> httpx.Response:
        # A 2xx whose envelope says "success": false created nothing: map it like an error.
        response = await super().send_submit(request, client_key=client_key, **kw)
        body = try_json(response)
        if isinstance(body, Mapping) and body.get("success") is False:
            raise self.map_error(response)
        return response

    def build_status(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", self.url(f"{wire.TASKS_PATH}/{_segment(handle.job_id)}"))

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        body = try_json(response)
        data = body.get("data") if isinstance(body, Mapping) else None
        if response.status_code >= 400 and not (isinstance(data, Mapping) and data.get("status") == "failed"):
            raise self.map_error(response, job_id=handle.job_id)  # an error, not a task document
        return wire.parse_task(
            body, job_id=handle.job_id, model=handle.model or "kling-o1", submitted_at=handle.submitted_at
        )

    def map_error(self, response: httpx.Response, *, job_id: str | None = None) -> ProviderError:
        return wire.error_from(
            response.status_code,
            try_json(response),
            job_id=job_id,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            text=response.text if "html" not in response.headers.get("content-type", "") else None,
        )

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        return JobHandle(provider=self.name, job_id=job_id, model=model or "kling-o1")

    # -- dry run -------------------------------------------------------------------------
    async def dry_run(self, request: EditRequest) -> Mapping[str, Any]:
        """Ask the host to validate and price the task without creating it (``dry_run: true``)."""
        body = wire.build_task(request, dry_run=True)
        # Sent like a submit (never retried after sending): if the host ever ignored the
        # flag, a retry could create a second paid task.
        response = await self.send_submit(
            self.make_request("POST", self.url(wire.TASKS_PATH), json_body=body), client_key=None
        )
        payload = try_json(response)
        data = wire.envelope_data(payload, what="dry-run response")
        out: dict[str, Any] = {"provider": self.name, "model": request.model, "request": body, "response": dict(data)}
        if isinstance(data.get("task_id"), str):
            out["warning"] = f"the host answered with task id {data['task_id']}: a task may have been created"
        return out


def _segment(job_id: str) -> str:
    """A job id as one URL path segment (ids typed by hand must not change the path)."""
    return quote(job_id, safe="")
