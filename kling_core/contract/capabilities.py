"""What each provider and model accepts, as data.

The core checks a request against these before any network call (``checks.check_request``),
the contract suite skips what a provider does not claim, and ``kling providers`` prints them.
"""

from __future__ import annotations

import attrs
from attrs import field


@attrs.frozen
class VideoLimits:
    """Source-video limits. The defaults are the Kling O1 edit's documented ones."""

    min_duration: float = 3.0
    max_duration: float = 10.05
    min_side: int = 720
    max_side: int = 2160
    min_fps: float = 24.0
    max_fps: float = 60.0
    max_bytes: int = 200 * 1024 * 1024
    containers: tuple[str, ...] = ("mp4", "mov")


@attrs.frozen
class ImageLimits:
    max_bytes: int = 10 * 1024 * 1024
    min_side: int = 300
    min_aspect: float = 0.4
    max_aspect: float = 2.5
    formats: tuple[str, ...] = ("jpeg", "png")


@attrs.frozen
class Price:
    """What a host charges for one model and quality, as published, with its source and date.

    A host charges per second of output video (``usd_per_second``) or per finished job
    (``usd_per_run``); one of the two is set. ``edit_mode`` None: the price of both modes.
    ``min_seconds``: the shortest length a per-second price bills; a shorter output is charged
    as that long (None: every second as made).
    """

    model: str  # canonical name: kling-o1 | kling-o3
    quality: str  # std | pro
    source: str  # where the figure is published (a URL), or why it is inferred
    as_of: str  # the date the figure was read, YYYY-MM-DD
    usd_per_second: float | None = None
    usd_per_run: float | None = None
    edit_mode: str | None = None
    note: str = ""  # e.g. "inferred from the host's credit price"
    min_seconds: float | None = None  # a shorter output is billed as this many seconds


@attrs.frozen
class ModelCapabilities:
    """One canonical model on one provider."""

    model: str  # canonical name: kling-o1 | kling-o3
    edit_modes: tuple[str, ...] = ("edit", "reference")
    qualities: tuple[str, ...] = ("std", "pro")
    max_references: int = 4  # images + elements together, with a video
    max_images: int = 4
    max_elements: int = 4
    element_reference_images: tuple[int, int] = (1, 3)
    accepts_elements: bool = True
    accepts_aspect_ratio: bool = False
    accepts_duration: bool = False
    # The edit modes those two apply to (Kling takes them only with refer_type feature: its
    # base edit follows the input), the values taken, and the modes that need an aspect ratio.
    aspect_ratio_modes: tuple[str, ...] = ("edit", "reference")
    duration_modes: tuple[str, ...] = ("edit", "reference")
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    durations: tuple[int, int] = (3, 15)  # seconds, inclusive
    aspect_ratio_required_modes: tuple[str, ...] = ()
    # Why a field is refused, by field name ("elements", "aspect_ratio", "duration"), for the message.
    refusals: dict[str, str] = field(factory=dict)
    element_name_max: int | None = None
    element_description_max: int | None = None
    video: VideoLimits = field(factory=VideoLimits)
    image: ImageLimits = field(factory=ImageLimits)
    # Host identifiers per (edit_mode, quality) or a single id: descriptive, for `providers`.
    endpoints: dict[str, str] = field(factory=dict)
    # Seconds from submit to a finished job on this host, as usually seen (low, high); None:
    # unknown. The poll schedule polls closely inside it (kling_core.client.schedule).
    typical_seconds: tuple[float, float] | None = None

    def takes_aspect_ratio(self, edit_mode: str) -> bool:
        return self.accepts_aspect_ratio and edit_mode in self.aspect_ratio_modes

    def takes_duration(self, edit_mode: str) -> bool:
        return self.accepts_duration and edit_mode in self.duration_modes


@attrs.frozen
class ProviderCapabilities:
    models: tuple[ModelCapabilities, ...]
    can_cancel: bool = False
    accepts_webhook: bool = False
    accepts_local_files: bool = True  # False: media must be http(s) URLs
    supports_dry_run: bool = False
    # The host finds a job by our client key, so an ambiguous submit can be resolved by query.
    can_reconcile: bool = False
    reports_progress: bool = False
    reports_cost: bool = False
    # Published prices (see Price); empty when the host publishes none.
    prices: tuple[Price, ...] = ()
    # Jobs one account may have in flight at once, from the host's documentation (None: none
    # documented). The default of the per-provider bound on jobs in flight (``max_in_flight``).
    max_in_flight: int | None = None

    def model(self, name: str) -> ModelCapabilities | None:
        for m in self.models:
            if m.model == name:
                return m
        return None

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.model for m in self.models)
