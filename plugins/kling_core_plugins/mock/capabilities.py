"""The mock serves exactly what the hosted O1/O3 edit models accept (same limits, same pools)."""

from __future__ import annotations

from kling_core.sdk import (
    ModelCapabilities,
    Price,
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
    # Renders locally with ffmpeg: free, which a dry run and --max-cost can rely on.
    prices=tuple(Price(model=m, quality=q, usd_per_second=0.0, source="local ffmpeg render (kling-core mock)",
                       as_of="2026-12-01", note="offline, no charge") for m in ("kling-o1", "kling-o3")
                 for q in ("std", "pro")),
)

# Short side of the output picture per quality (the hosts' 720p / 1080p).
OUTPUT_SHORT_SIDE: dict[str, int] = {"std": 720, "pro": 1080}
