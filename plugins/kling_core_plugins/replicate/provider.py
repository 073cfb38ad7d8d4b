"""The Replicate provider: ``kwaivgi/kling-o1`` and ``kwaivgi/kling-v3-omni-video`` predictions.

A prediction is created on the official model's route, then followed through the ``urls.get``
and ``urls.cancel`` the host returns (rebuilt from ``/v1/predictions/{id}`` on resume).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import httpx

from kling_core.sdk import (
    CredentialSpec,
    EditRequest,
    HostStatus,
    HttpProvider,
    JobHandle,
    PollSettings,
    Problem,
    ProviderCapabilities,
    try_json,
)
from kling_core_plugins.replicate import wire


class ReplicateProvider(HttpProvider):
    name: ClassVar[str] = "replicate"
    title: ClassVar[str] = "Replicate (kwaivgi/kling-o1 and kwaivgi/kling-v3-omni-video predictions)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (CredentialSpec("api_token", "REPLICATE_API_TOKEN"),)
    capabilities: ClassVar[ProviderCapabilities] = wire.CAPABILITIES
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    default_poll: ClassVar[PollSettings] = PollSettings(initial=5.0, factor=1.5, max=30.0)
    spec = wire.SPEC
    error_table = wire.ERRORS
    schema_dir: ClassVar[Path] = Path(__file__).parent / "schemas"
    request_schema_name = wire.REQUEST_SCHEMAS["kling-o1"]
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "replicate-prediction.schema.json",
        "status": "replicate-prediction.schema.json",
        "error": "replicate-error.schema.json",
    }
    submit_body = staticmethod(wire.build_prediction)

    def build_submit(self, request: EditRequest) -> httpx.Request:
        # The route names the model, so it is not one template for every request.
        return self.make_request("POST", self.url(wire.submit_path(request)), json_body=self.submit_body(request))

    def request_schema(self, request: EditRequest) -> str | None:
        return wire.REQUEST_SCHEMAS.get(request.model, self.request_schema_name)

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> HostStatus:
        # Said plainly, rather than "a completed job without an output video". A parser may only
        # raise ProtocolError (the contract kit's rule), so it is not a ResultExpiredError.
        if wire.output_removed(try_json(response)):
            raise self.protocol_error(wire.OUTPUT_REMOVED, response, job_id=handle.job_id)
        return super().parse_status(response, handle)

    def check(self, request: EditRequest) -> list[Problem]:
        return [Problem(f"options.{key}", "unknown option for replicate (it takes none)") for key in request.options]
