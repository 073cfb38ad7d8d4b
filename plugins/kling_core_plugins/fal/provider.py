"""The fal.ai provider: fal's queue API for the Kling O1/O3 video-to-video edit.

Submit goes to ``https://queue.fal.run/<model id>``; afterwards only the status, response and
cancel URLs fal returned are used (they name the owner/app only, never the model subpath).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from kling_core.sdk import (
    CallbackShape,
    CancelShape,
    CredentialSpec,
    EditRequest,
    ErrorShape,
    HostSpec,
    HttpProvider,
    JobHandle,
    MediaUploader,
    PollSettings,
    Problem,
    ResultShape,
    Routes,
    StatusShape,
    StreamShape,
    SubmitShape,
    fal_style_edit_body,
)
from kling_core_plugins.fal import wire
from kling_core_plugins.fal.endpoints import APP, CAPABILITIES, ENDPOINTS, QUEUE_BASE, REFERENCE_FIELDS
from kling_core_plugins.fal.storage import STORAGE_API, FalStorage

# Request options fal understands, each sent as a documented header (providers.md §1.2).
OPTION_HEADERS: Mapping[str, str] = {
    "request_timeout": "x-fal-request-timeout",  # seconds (> 1) before fal gives up on a start
    "priority": "x-fal-queue-priority",  # normal | low
}
PRIORITIES = ("normal", "low")
_REQUEST = f"{APP}/requests/{{job_id}}"

SPEC = HostSpec(
    routes=Routes(status=f"{_REQUEST}/status", result=_REQUEST, cancel=f"{_REQUEST}/cancel", cancel_method="PUT",
                  status_query={"logs": "1"}),
    submit=SubmitShape(job_id="request_id",
                       urls={"status": "status_url", "response": "response_url", "cancel": "cancel_url"}),
    status=StatusShape(
        states=wire.QUEUE_STATES, position="queue_position", logs="logs",
        error_message=("error",), error_code=("error_type",), completed_error=("error", "error_type"),
        failure_kinds=wire.JOB_ERROR_KINDS, retryable_codes=wire.RETRYABLE_CODES,
        cancelled_codes=frozenset({"client_cancelled"}),  # COMPLETED after a cancel
    ),
    # The result GET repeats the model's own error: 400/422 there is a failed job.
    result_accept=frozenset({400, 422}),
    result=ResultShape(url=("video.url",), file_size="video.file_size", content_type="video.content_type",
                       file_name="video.file_name"),
    cancel=CancelShape(state="status", accepted=frozenset({"OK", "CANCELLATION_REQUESTED"}),
                       too_late=frozenset({"ALREADY_COMPLETED"}), not_found=frozenset({"NOT_FOUND"})),
    errors=ErrorShape(message=("detail", "error"), code=("error_type",), code_header="x-fal-error-type",
                      details="detail", retryable_header="x-fal-retryable"),
    expired={"result": "fal no longer holds this result (kept 1 hour, or 6 minutes when large); "
                       "the job was not resubmitted"},
    # Webhooks (providers.md §1.7): request_id, status OK|ERROR, the result under payload;
    # signed with Ed25519 (keys from fal's JWKS).
    callback=CallbackShape(
        job_id="request_id",
        status=StatusShape(states={"OK": "completed", "ERROR": "failed"}, error_message=("error", "payload_error")),
        result=ResultShape(url=("payload.video.url",), file_size="payload.video.file_size",
                           content_type="payload.video.content_type", file_name="payload.video.file_name"),
        signature="fal-ed25519",
    ),
    # fal's status stream (docs: inference-api/queue/status-stream): server-sent events of the
    # status document, closed after COMPLETED, a keep-alive comment every 15 s; three missed
    # keep-alives lose it [inferred limit].
    stream=StreamShape(route="{status_url}/stream", query={"logs": "1"}, idle=45.0),
)


class FalProvider(HttpProvider):
    name: ClassVar[str] = "fal"
    title: ClassVar[str] = "fal.ai queue API"
    credentials = (CredentialSpec("api_key", "FAL_KEY"),)
    capabilities = CAPABILITIES
    default_base_url: ClassVar[str] = QUEUE_BASE
    # (model, edit mode, quality) -> fal model id; a subclass may extend it (e.g. Kling 4.0).
    endpoints: ClassVar[Mapping[tuple[str, str, str], str]] = ENDPOINTS
    spec = SPEC
    auth_scheme: ClassVar[str] = "Key"
    credential_hosts: ClassVar[tuple[str, ...]] = ("queue.fal.run", "queue.falrun.com", httpx.URL(STORAGE_API).host)
    error_table = wire.ERROR_TABLE
    request_schema_name = "fal-kling-video-to-video-request.schema.json"
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "fal-queue-submit-response.schema.json",
        "status": "fal-queue-status.schema.json",
        "result": "fal-edit-result.schema.json",
        "error": "fal-error.schema.json",
    }
    # Hosted edits take minutes: poll from 2 s, growing to 20 s.
    default_poll: ClassVar[PollSettings] = PollSettings(initial=2.0)

    def extra_api_hosts(self) -> tuple[str, ...]:
        storage = self.ctx.settings.options.get("storage_url")
        return (httpx.URL(str(storage)).host,) if storage else ()

    def own_uploader(self) -> MediaUploader:
        return FalStorage(self)  # local media goes to fal storage

    def check(self, request: EditRequest) -> list[Problem]:
        return [Problem(f"options.{key}", why) for key, value in request.options.items()
                if (why := wire.option_problem(key, value, OPTION_HEADERS, PRIORITIES))]

    def submit_body(self, request: EditRequest) -> dict[str, Any]:
        body = fal_style_edit_body(request)
        if request.edit_mode == "reference":  # only the reference endpoints have these fields
            if "duration" in REFERENCE_FIELDS and request.duration is not None:
                body["duration"] = str(request.duration)  # fal's DurationEnum: "3".."10"
            if "aspect_ratio" in REFERENCE_FIELDS and request.aspect_ratio is not None:
                body["aspect_ratio"] = request.aspect_ratio
        return body

    def build_submit(self, request: EditRequest) -> httpx.Request:
        endpoint = self.endpoints.get((request.model, request.edit_mode, request.quality))
        if endpoint is None:
            raise ValueError(f"fal has no endpoint for {request.model} {request.edit_mode} {request.quality}")
        return self.make_request(
            "POST", self.url(endpoint), json_body=self.submit_body(request),
            params={"fal_webhook": request.webhook_url} if request.webhook_url else None,
            headers={OPTION_HEADERS[k]: str(v) for k, v in request.options.items() if k in OPTION_HEADERS},
        )

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        # fal's answer always names all three URLs (its schema requires them, fal_client indexes
        # them): one without them did not come from fal's queue.
        handle = super().parse_submit(response, request)
        missing = [path for key, path in self.spec.submit.urls.items() if key not in handle.urls]
        if missing:
            raise self.protocol_error(f"the submit answer lacks {', '.join(missing)}", response, job_id=handle.job_id)
        return handle
