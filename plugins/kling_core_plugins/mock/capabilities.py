"""The mock serves exactly what the hosted O1/O3 edit models accept (same limits, same pools)."""

from __future__ import annotations

from kling_core.sdk import (
    ModelCapabilities,
    ProviderCapabilities,
)

CAPABILITIES = ProviderCapabilities(
    models=(
        ModelCapabilities(model="kling-o1", endpoints={"edit": "local ffmpeg render"}),
        ModelCapabilities(model="kling-o3", endpoints={"edit": "local ffmpeg render"}),
    ),
    can_cancel=True,
    accepts_webhook=False,
    accepts_local_files=True,
    supports_dry_run=True,
    reports_progress=True,
    reports_cost=False,
)

# Short side of the output picture per quality (the hosts' 720p / 1080p).
OUTPUT_SHORT_SIDE: dict[str, int] = {"std": 720, "pro": 1080}
