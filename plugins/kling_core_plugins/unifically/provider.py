"""The Unifically provider: Kling O1 (O1 Edit) and O3 (Kling 3.0 Omni) edits through ``/v1/tasks``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from kling_core.sdk import (
    MISSING,
    CredentialSpec,
    EditRequest,
    HttpProvider,
    JobHandle,
    PollSettings,
    Problem,
    ProviderCapabilities,
    field,
    try_json,
)
from kling_core_plugins.unifically import wire


class UnificallyProvider(HttpProvider):
    name: ClassVar[str] = "unifically"
    title: ClassVar[str] = "Unifically (Kling O1 Edit and Kling 3.0 Omni via /v1/tasks)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (CredentialSpec("api_key", "UNIFICALLY_API_KEY"),)
    capabilities: ClassVar[ProviderCapabilities] = wire.CAPABILITIES
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    default_poll: ClassVar[PollSettings] = PollSettings(initial=5.0, factor=1.5, max=30.0)
    spec = wire.SPEC
    error_table = wire.ERRORS
    request_schema_name = "unifically-task-request.schema.json"
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "unifically-task-submit-response.schema.json",
        "status": "unifically-task-status-response.schema.json",
        "error": "unifically-error-response.schema.json",
        "dry_run": "unifically-dry-run-response.schema.json",
    }
    submit_body = staticmethod(wire.build_task)

    def check(self, request: EditRequest) -> list[Problem]:
        return [Problem(path, why) for path, why in wire.option_problems(request)]

    def request_schema(self, request: EditRequest) -> str | None:
        return wire.REQUEST_SCHEMAS.get(request.model, self.request_schema_name)

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        # The docs (and the submit schema) give `task_id` as a string; a number there is not
        # an answer this plugin understands, so it is not guessed into one.
        task_id = field(try_json(response), wire.SPEC.submit.job_id)
        if task_id is not MISSING and task_id is not None and not isinstance(task_id, str):
            raise self.protocol_error(f"the submit answer's {wire.SPEC.submit.job_id} is not a string", response)
        return super().parse_submit(response, request)

    def build_dry_run(self, request: EditRequest) -> httpx.Request:
        """The task with ``dry_run: true``: validated and priced, not created."""
        return self.make_request("POST", self.url(wire.TASKS_PATH), json_body=wire.build_task(request, dry_run=True))

    def parse_dry_run(self, response: httpx.Response, request: EditRequest) -> Mapping[str, Any]:
        data = field(try_json(response), "data")
        if not isinstance(data, Mapping):
            raise self.protocol_error("the dry-run answer lacks object 'data'", response)
        out: dict[str, Any] = {"provider": self.name, "model": request.model,
                               "request": wire.build_task(request, dry_run=True), "response": dict(data)}
        if isinstance(data.get("task_id"), str):
            out["warning"] = f"the host answered with task id {data['task_id']}: a task may have been created"
        return out
