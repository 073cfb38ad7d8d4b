"""fal's model endpoints and what each accepts, as data.

Sources (providers.md §1.1, §1.10): O1 edit/reference pro and standard and O3 edit pro are
documented; O3 edit standard is used by public integrations; no O3 video-to-video
*reference* endpoint is documented, so O3 offers the edit mode only.
"""

from __future__ import annotations

from kling_core.sdk import ModelCapabilities, ProviderCapabilities

QUEUE_BASE = "https://queue.fal.run"
# The owner/app part of every Kling model id: status/result/cancel URLs use only this.
APP = "fal-ai/kling-video"

# (canonical model, edit mode, quality) -> fal model id (the submit URL path).
ENDPOINTS: dict[tuple[str, str, str], str] = {
    ("kling-o1", "edit", "pro"): "fal-ai/kling-video/o1/video-to-video/edit",
    ("kling-o1", "edit", "std"): "fal-ai/kling-video/o1/standard/video-to-video/edit",
    ("kling-o1", "reference", "pro"): "fal-ai/kling-video/o1/video-to-video/reference",
    ("kling-o1", "reference", "std"): "fal-ai/kling-video/o1/standard/video-to-video/reference",
    ("kling-o3", "edit", "pro"): "fal-ai/kling-video/o3/pro/video-to-video/edit",
    ("kling-o3", "edit", "std"): "fal-ai/kling-video/o3/standard/video-to-video/edit",
}

# Both models default keep_audio differently on fal (O1 false, O3 true), so it is always sent.
CAPABILITIES = ProviderCapabilities(
    models=(
        ModelCapabilities(
            model="kling-o1",
            edit_modes=("edit", "reference"),
            endpoints={f"{m}/{q}": path for (model, m, q), path in ENDPOINTS.items() if model == "kling-o1"},
        ),
        ModelCapabilities(
            model="kling-o3",
            edit_modes=("edit",),
            endpoints={f"{m}/{q}": path for (model, m, q), path in ENDPOINTS.items() if model == "kling-o3"},
        ),
    ),
    can_cancel=True,
    accepts_webhook=True,
    accepts_local_files=True,  # uploaded to fal storage in prepare()
    supports_dry_run=False,
    reports_progress=False,
    reports_cost=False,
)


def endpoint_for(model: str, edit_mode: str, quality: str) -> str | None:
    return ENDPOINTS.get((model, edit_mode, quality))
