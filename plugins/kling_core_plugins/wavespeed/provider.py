"""The WaveSpeedAI provider: Kling O1 and O3 video edits through ``/api/v3/kwaivgi/...``.

One POST per edit to the model's video-edit endpoint (``?webhook=`` for a callback), then
``GET /api/v3/predictions/{id}/result`` (the answer's ``urls.get``) until ``completed``
(``outputs[0]`` is the video) or ``failed`` (``error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import httpx

from kling_core.sdk import (
    CredentialSpec,
    EditRequest,
    HttpProvider,
    PollSettings,
    Problem,
    ProviderCapabilities,
)
from kling_core_plugins.wavespeed import wire


class WaveSpeedProvider(HttpProvider):
    name: ClassVar[str] = "wavespeed"
    title: ClassVar[str] = "WaveSpeedAI (Kling O1/O3 video-edit via /api/v3)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (CredentialSpec("api_key", "WAVESPEED_API_KEY"),)
    capabilities: ClassVar[ProviderCapabilities] = wire.CAPABILITIES
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    # "Video tasks: at least 5 seconds between checks", growing for long tasks (How to Get Result).
    default_poll: ClassVar[PollSettings] = PollSettings(initial=5.0, factor=1.5, max=30.0)
    spec = wire.SPEC
    error_table = wire.ERRORS
    schema_dir: ClassVar[Path] = Path(__file__).parent / "schemas"
    request_schema_name = "wavespeed-video-edit-request.schema.json"
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "wavespeed-prediction-response.schema.json",
        "status": "wavespeed-prediction-response.schema.json",
        "error": "wavespeed-error-response.schema.json",
    }

    def check(self, request: EditRequest) -> list[Problem]:
        return [Problem(path, why) for path, why in wire.option_problems(request)]

    def build_submit(self, request: EditRequest) -> httpx.Request:
        return self.make_request(
            "POST", self.url(f"api/v3/{wire.model_id(request)}"), json_body=wire.build_body(request),
            params={wire.WEBHOOK_PARAM: request.webhook_url} if request.webhook_url else None,
        )
