"""fal's model endpoints and what each accepts, as data.

Sources (providers.md §1.1, §1.10, §8): O1 edit/reference pro and standard and O3 edit pro
are documented; O3 edit standard is used by public integrations; O3 ``video-to-video/reference``
(pro and standard) is listed beside the edit on fal's O3 pages. The reference endpoints take
``duration`` and ``aspect_ratio`` (O1: ``auto|16:9|9:16|1:1``, a third-party mirror of fal's
schema); the edit endpoints take neither (the output follows the input).
"""

from __future__ import annotations

from kling_core.sdk import ModelCapabilities, Price, ProviderCapabilities

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
    ("kling-o3", "reference", "pro"): "fal-ai/kling-video/o3/pro/video-to-video/reference",
    ("kling-o3", "reference", "std"): "fal-ai/kling-video/o3/standard/video-to-video/reference",
}
# What the reference endpoints add: duration (fal's DurationEnum, sent as a string) and aspect
# ratio. With a reference video Kling makes 3–10 s (third-party docs agree; providers.md §8).
REFERENCE_FIELDS = frozenset({"duration", "aspect_ratio"})
# No job durations are published for fal; the same Kling models take 210-255 s on Segmind,
# whose pages publish them (providers.md §2.1, §8) [inferred for fal].
TYPICAL_SECONDS = (210.0, 255.0)
_EDIT_FOLLOWS_INPUT = {"aspect_ratio": "the edit endpoint follows the input; the reference endpoint takes it",
                       "duration": "the edit endpoint follows the input; the reference endpoint takes it"}

# Per second of output video. The O3 pro edit figure is on its model page; the O1 figures come
# from a third-party snapshot of fal's pricing (providers.md §1.1), the O3 standard one from
# providers.md §8; the reference endpoints are taken to cost what the edit does [inferred].
_FAL_O3_PRO = "https://fal.ai/models/fal-ai/kling-video/o3/pro/video-to-video/edit/llms.txt"
_FAL_PRICING = "https://fal.ai/pricing"
PRICES = (
    Price(model="kling-o1", quality="pro", usd_per_second=0.168, source=_FAL_PRICING, as_of="2026-12-01",
          note="third-party snapshot of fal's pricing [inferred]"),
    Price(model="kling-o1", quality="std", usd_per_second=0.126, source=_FAL_PRICING, as_of="2026-12-01",
          note="third-party snapshot of fal's pricing [inferred]"),
    Price(model="kling-o3", quality="pro", usd_per_second=0.336, source=_FAL_O3_PRO, as_of="2026-12-01"),
    Price(model="kling-o3", quality="std", usd_per_second=0.252, source=_FAL_PRICING, as_of="2026-12-01",
          note="approximate figure from public listings [inferred]"),
)

# Both models default keep_audio differently on fal (O1 false, O3 true), so it is always sent.
CAPABILITIES = ProviderCapabilities(
    models=(
        ModelCapabilities(
            model="kling-o1",
            edit_modes=("edit", "reference"),
            accepts_aspect_ratio=True, aspect_ratio_modes=("reference",), aspect_ratios=("auto", "16:9", "9:16", "1:1"),
            accepts_duration=True, duration_modes=("reference",), durations=(3, 10),
            refusals=_EDIT_FOLLOWS_INPUT,
            endpoints={f"{m}/{q}": path for (model, m, q), path in ENDPOINTS.items() if model == "kling-o1"},
            typical_seconds=TYPICAL_SECONDS,
        ),
        ModelCapabilities(
            model="kling-o3",
            edit_modes=("edit", "reference"),
            # The O3 reference schema was not captured: Kling's own ratios, no "auto" [inferred].
            accepts_aspect_ratio=True, aspect_ratio_modes=("reference",),
            accepts_duration=True, duration_modes=("reference",), durations=(3, 10),
            refusals=_EDIT_FOLLOWS_INPUT,
            endpoints={f"{m}/{q}": path for (model, m, q), path in ENDPOINTS.items() if model == "kling-o3"},
            typical_seconds=TYPICAL_SECONDS,
        ),
    ),
    can_cancel=True,
    accepts_webhook=True,
    accepts_local_files=True,  # uploaded to fal storage in prepare()
    supports_dry_run=False,
    reports_progress=False,
    reports_cost=False,
    prices=PRICES,
)
