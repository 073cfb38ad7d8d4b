"""What a logged job cost: the charge a host reported, else the estimate made before it was sent.

Hosts report differently (``Cost`` in :mod:`kling_core.contract.models`): Kling reports the
units a task used (``final_unit_deduction`` -> ``credits``), which are resource-pack units, not
dollars; a host reporting an ``amount`` with a currency gives money; Segmind reports only the
account's remaining credits after the charge (``remaining_credits``), which other jobs of the
same account change too, so it is shown as a balance and never turned into a per-job charge.
Where no charge is reported, the estimate (``kling_core.pricing``) stands, marked ``~``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from kling_core.joblog.records import JobRecord
from kling_core.money import format_usd

# The jobs a host charges for: it made a video. A failed or cancelled job is assumed free [inferred].
CHARGED_STATES = frozenset({"succeeded", "saved"})


@attrs.frozen
class JobCost:
    text: str  # for the table: "$1.08", "~$1.08", "<=$1.69", "12 units", "-"
    basis: str  # "reported by the host", "estimate", ...
    usd: float | None = None  # dollars: reported, else estimated
    units: float | None = None  # host units (Kling's final_unit_deduction)
    estimated: bool = False


def job_cost(record: JobRecord) -> JobCost:
    cost = record.cost or {}
    amount, currency, credits = cost.get("amount"), cost.get("currency"), cost.get("credits")
    if isinstance(amount, (int, float)) and (currency or "USD").upper() == "USD":
        return JobCost(format_usd(float(amount)), "reported by the host", usd=float(amount))
    if isinstance(credits, (int, float)):
        return JobCost(f"{credits:g} units", "units reported by the host (not dollars)", units=float(credits))
    estimate = record.estimate or {}
    usd = estimate.get("usd")
    if isinstance(usd, (int, float)):
        bound = bool(estimate.get("upper_bound"))
        text = ("<=" if bound else "~") + format_usd(float(usd))
        basis = "estimate before submitting" + (", an upper bound" if bound else "")
        return JobCost(text, basis, usd=float(usd), estimated=True)
    return JobCost("-", "no price known")


def total_line(records: Sequence[JobRecord]) -> str:
    """One line summing the jobs that made a video: dollars (reported or estimated) and host units."""
    charged = [r for r in records if r.state in CHARGED_STATES]
    costs = [job_cost(r) for r in charged]
    usd = sum(c.usd for c in costs if c.usd is not None)
    units = sum(c.units for c in costs if c.units is not None)
    estimated = sum(1 for c in costs if c.estimated)
    unknown = sum(1 for c in costs if c.usd is None and c.units is None)
    parts = [f"total: {format_usd(usd)} over {len(charged)} finished job{'s' if len(charged) != 1 else ''} listed"]
    if estimated:
        parts.append(f"{estimated} by estimate")
    if units:
        parts.append(f"plus {units:g} host units")
    if unknown:
        parts.append(f"{unknown} without a known price")
    return "; ".join(parts)
