"""The Segmind provider: the v2 async API by default, the v1 blocking call on request.

v2: ``POST /v2/<slug>`` → request id + status/response URLs; ``GET status_url`` until
COMPLETED (or FAILED, served with HTTP 422), then ``GET response_url`` for the output URL.
v1 (``options.api = "v1"``): one blocking POST that answers with the video itself (raw
``video/mp4``, saved to the work dir) or a JSON document naming it, by content type.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import ClassVar

import httpx

from kling_core.sdk import (
    CredentialSpec,
    EditRequest,
    ErrorShape,
    Failed,
    HostSpec,
    HttpProvider,
    JobHandle,
    JobStatus,
    PollSettings,
    Problem,
    ResultShape,
    Routes,
    StatusShape,
    SubmitShape,
    field,
    field_text,
    saved_body,
    try_json,
)
from kling_core_plugins.segmind import wire

APIS = ("v2", "v1")
V1_TIMEOUT = 600.0  # a blocking edit takes ~4 minutes

SPEC = HostSpec(
    routes=Routes(status="v2/requests/{job_id}/status", result="v2/requests/{job_id}"),
    submit=SubmitShape(job_id="request_id", urls={"status": "status_url", "response": "response_url"},
                       headers={"remaining_credits": wire.CREDITS_HEADER}),
    status=StatusShape(states=wire.STATES, error_message=("error",), default_failure="the job failed on Segmind"),
    status_accept=frozenset({422}),  # FAILED comes as HTTP 422 with a status body
    result_accept=frozenset({422}),
    result=ResultShape(url=wire.OUTPUT_PATHS, remaining_credits_header=wire.CREDITS_HEADER),
    errors=ErrorShape(reset_header=wire.RESET_HEADER),
    expired={
        "status": "Segmind does not know this request: status and results are kept 1 hour after "
                  "submission (or the id is wrong); it was not resubmitted",
        "result": "Segmind no longer holds this result (kept 1 hour after submission); not resubmitted",
    },
)


class SegmindProvider(HttpProvider):
    name: ClassVar[str] = "segmind"
    title: ClassVar[str] = "Segmind serverless API"
    credentials = (CredentialSpec("api_key", "SEGMIND_API_KEY"),)
    capabilities = wire.CAPABILITIES
    default_base_url: ClassVar[str] = wire.API_BASE
    slugs: ClassVar[Mapping[tuple[str, str], str]] = wire.SLUGS  # (model, edit mode) -> URL slug
    spec = SPEC
    auth_header: ClassVar[str] = "x-api-key"
    auth_scheme: ClassVar[str] = ""
    error_table = wire.ERROR_TABLE
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "segmind-v2-submit-response.schema.json",
        "status": "segmind-v2-status.schema.json",
        "result": "segmind-v2-result.schema.json",
        "error": "segmind-error.schema.json",
    }
    default_poll: ClassVar[PollSettings] = PollSettings(initial=2.0)

    def api_version(self, request: EditRequest) -> str:
        return str(request.options.get("api", self.ctx.settings.options.get("api", "v2")))

    def check(self, request: EditRequest) -> list[Problem]:
        return [Problem(path, why) for path, why in wire.option_problems(request, APIS)]

    def request_schema(self, request: EditRequest) -> str | None:
        return wire.REQUEST_SCHEMAS[request.model]

    def saves_submit_body(self, request: EditRequest) -> bool:
        return self.api_version(request) == "v1"

    def build_submit(self, request: EditRequest) -> httpx.Request:
        slug = self.slugs.get((request.model, request.edit_mode))
        if slug is None:
            raise ValueError(f"segmind has no endpoint for {request.model} {request.edit_mode}")
        version = self.api_version(request)
        req = self.make_request("POST", self.url(f"{version}/{slug}"), json_body=wire.submit_body(request))
        if version == "v1":
            req.extensions["timeout"] = httpx.Timeout(max(V1_TIMEOUT, self.ctx.settings.timeout), connect=10.0).as_dict()
        return req

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        if not self.saves_submit_body(request):
            return super().parse_submit(response, request)
        # v1: the answer was the video (saved) or a document naming it; the job is already done.
        job_id = request.client_key or f"v1-{uuid.uuid4().hex}"
        data = {"api": "v1"}
        path = saved_body(response)
        if path is not None:
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            data.update(result_url=path.as_uri(), file_size=str(path.stat().st_size),
                        content_type=ctype if ctype.startswith("video/") else "video/mp4")
        else:
            url = field_text(self.json_object(response), wire.OUTPUT_PATHS)
            if url is None:
                # The job ran (HTTP 2xx): a ProtocolError makes the submit uncertain, never a refusal
                # that frees the key. No job id: ours is not Segmind's, and v1 has nothing to poll.
                raise self.protocol_error("the v1 answer names no output video; the job ran, check your Segmind "
                                          "dashboard", response)
            data["result_url"] = url
        if wire.credits(response.headers) is not None:
            data["remaining_credits"] = response.headers[wire.CREDITS_HEADER]
        return JobHandle(provider=self.name, job_id=job_id, model=request.model, client_key=request.client_key,
                         data=data)

    def parse_result(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        # FAILED comes as HTTP 422 with a status body at the result URL too: the same failed job
        # as at the status URL (kind job_failed), not a rejected request.
        if response.status_code == 422 and field(try_json(response), self.spec.status.state) == "FAILED":
            return Failed(handle.job_id, self.name, self.job_error(self.json_object(response)))
        return super().parse_result(response, handle)
