"""What a request would cost on a host, before anything is submitted.

Prices are data: each provider publishes its table in ``capabilities.prices`` (see
:class:`kling_core.contract.capabilities.Price`), with where the figure comes from and when it
was read. An estimate multiplies a per-second price by the output's seconds (at least the
price's ``min_seconds``, the shortest length the host bills), or takes a per-run price as it is. An edit's output follows the input video: a local video is probed; for
a URL the request's ``duration`` is used when given, otherwise the model's longest accepted
input, and the estimate is then an upper bound ("at most").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import attrs

from kling_core.contract.capabilities import Price, ProviderCapabilities
from kling_core.contract.checks import local_path
from kling_core.contract.models import EditRequest
from kling_core.money import format_usd

if TYPE_CHECKING:
    from kling_core.client.base import ClientBase
    from kling_core.client.sync import EditClient


@attrs.frozen
class CostEstimate:
    """The estimated charge of one request on one provider (``usd`` None: no known price)."""

    provider: str
    model: str
    quality: str
    seconds: float | None  # output seconds the estimate counts (None: per-run price or unknown)
    usd: float | None
    source: str | None  # where the price is published
    as_of: str | None  # when the price was read, YYYY-MM-DD
    upper_bound: bool = False  # seconds is the model's maximum: the charge is at most ``usd``
    usd_per_second: float | None = None
    usd_per_run: float | None = None
    note: str = ""  # the price's own note ("inferred ..."), or why there is no price
    billed_seconds: float | None = None  # the seconds charged: ``seconds``, or the host's minimum when longer

    @property
    def known(self) -> bool:
        return self.usd is not None

    def describe(self) -> str:
        """One line for people: ``fal: $3.36 (10.0 s x $0.336/s, fal.ai ..., as of 2026-12-01)``."""
        if self.usd is None:
            return f"{self.provider}: price unknown ({self.note or 'the host publishes none we know of'})"
        if self.usd_per_run is not None:
            how = f"${self.usd_per_run:g} per job"
        else:
            secs = f"{self.seconds:g} s" if self.seconds is not None else "? s"
            if self.billed_seconds is not None and self.billed_seconds != self.seconds:
                secs += f" billed as {self.billed_seconds:g} s, the host's minimum,"
            how = f"{secs} x ${self.usd_per_second:g}/s" + (", the model's longest input" if self.upper_bound else "")
        prefix = "at most " if self.upper_bound else ""
        tail = f"; {self.note}" if self.note else ""
        return f"{self.provider}: {prefix}{format_usd(self.usd)} ({how}; {self.source}, as of {self.as_of}{tail})"


def find_price(prices: Iterable[Price], model: str, quality: str, edit_mode: str) -> Price | None:
    """The price of ``model``/``quality``: one for this edit mode first, else one for every mode."""
    general = None
    for price in prices:
        if price.model != model or price.quality != quality:
            continue
        if price.edit_mode == edit_mode:
            return price
        if price.edit_mode is None and general is None:
            general = price
    return general


def output_seconds(request: EditRequest, caps: ProviderCapabilities) -> tuple[float | None, bool]:
    """The output's seconds and whether that is only an upper bound.

    A reference-mode request with a duration makes that many seconds; an edit follows its
    input video (a local file is probed, a URL without a duration counts as the model's
    longest input).
    """
    model = caps.model(request.model)
    if request.duration is not None and (model is None or model.takes_duration(request.edit_mode)):
        return float(request.duration), False
    path = local_path(request.video)
    if path is not None:
        from kling_core.media.probe import probe_video  # PyAV: imported only when a file is probed

        return round(probe_video(path, "video", decode=False).duration, 3), False
    if request.duration is not None:
        return float(request.duration), False
    limit = model.video.max_duration if model is not None else None
    return limit, limit is not None


def estimate(name: str, caps: ProviderCapabilities, request: EditRequest) -> CostEstimate:
    """The estimate from capability data alone: no client, no credentials, no network."""
    price = find_price(caps.prices, request.model, request.quality, request.edit_mode)
    if price is None:
        note = ("the host publishes no price we know of" if not caps.prices
                else f"no published price for {request.model} {request.quality} ({request.edit_mode})")
        return CostEstimate(name, request.model, request.quality, None, None, None, None, note=note)
    if price.usd_per_run is not None:
        return CostEstimate(name, request.model, request.quality, None, price.usd_per_run, price.source,
                            price.as_of, usd_per_run=price.usd_per_run, note=price.note)
    seconds, upper = output_seconds(request, caps)
    rate = price.usd_per_second
    billed = billed_seconds(seconds, price)
    usd = round(billed * rate, 4) if billed is not None and rate is not None else None
    return CostEstimate(name, request.model, request.quality, seconds, usd, price.source, price.as_of,
                        upper_bound=upper, usd_per_second=rate, note=price.note, billed_seconds=billed)


def billed_seconds(seconds: float | None, price: Price) -> float | None:
    """The seconds a per-second ``price`` charges for an output of ``seconds``: never under its minimum."""
    if seconds is None or price.min_seconds is None:
        return seconds
    return max(seconds, price.min_seconds)


def estimate_cost(client: ClientBase | EditClient, request: EditRequest, provider: str | None = None) -> CostEstimate:
    """What ``request`` would cost on ``provider`` (the client's default when None); ``client`` is
    an ``AsyncEditClient`` or an ``EditClient``.

    Reads the provider's class-level capability data only: a missing key does not stop an
    estimate. A local video that cannot be probed raises ValidationError naming ``video``.
    """
    base = cast("ClientBase", getattr(client, "_async", client))  # an EditClient wraps its async client
    name = provider or base.default_provider
    cls = base.host.provider_class(name)
    return estimate(cls.name, cls.capabilities, request)


def over_budget(estimate: CostEstimate, max_cost: float) -> str | None:
    """Why ``estimate`` breaks a ``max_cost`` budget (None: within it).

    An unknown price breaks any budget: a cap is a promise not to spend more than it, which an
    unknown charge cannot keep.
    """
    if estimate.usd is None:
        return (f"the price on {estimate.provider} is unknown ({estimate.note}), so max_cost "
                f"{format_usd(max_cost)} cannot be kept")
    if estimate.usd > max_cost:
        bound = "at most " if estimate.upper_bound else ""
        return (f"the estimate on {estimate.provider} is {bound}{format_usd(estimate.usd)}, over max_cost "
                f"{format_usd(max_cost)}")
    return None
