"""ExampleProvider: Kling O1/O3 edits through the Example Video API's ``/v1/edits``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from kling_core.sdk import (
    CredentialSpec,
    EditRequest,
    HttpProvider,
    ModelCapabilities,
    ProviderCapabilities,
    render_prompt,
    spell_snake,
)
from kling_example import wire

_MODEL: dict[str, Any] = {
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
        models=(ModelCapabilities(model="kling-o1", **_MODEL), ModelCapabilities(model="kling-o3", **_MODEL)),
        can_cancel=True,
        accepts_local_files=False,  # the API fetches media by URL only
        reports_progress=True,
    )
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    auth_scheme: ClassVar[str] = "Bearer"
    spec = wire.SPEC
    error_table = wire.ERRORS
    request_schema_name = "example-edit-request.schema.json"
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "example-edit-response.schema.json",
        "status": "example-edit-response.schema.json",
        "error": "example-error-response.schema.json",
    }
    cassette_dir: ClassVar[Path] = Path(__file__).parent / "cassettes"

    def submit_body(self, request: EditRequest) -> dict[str, Any]:
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
        return body
