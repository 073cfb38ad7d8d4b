"""``kling edit --dry-run`` / ``--compare`` / ``--max-cost``: prices before anything is paid.

Estimates come from the providers' capability data (:mod:`kling_core.pricing`); nothing here
touches the network except a host's own dry run, where the host has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import click

from kling_core.client import AsyncEditClient
from kling_core.contract.checks import URLS_ONLY, check_against, check_local_media, check_references
from kling_core.contract.models import EditRequest
from kling_core.errors import KlingError, MissingKeyError, Problem, UnsupportedError, ValidationError
from kling_core.money import format_usd
from kling_core.pricing import CostEstimate, estimate, over_budget

_MAX_USD = 1_000_000.0


def parse_max_cost(raw: str | None) -> float | None:
    """``--max-cost USD``: a finite amount, 0 or more (``$`` allowed); else exit 2 naming ``max_cost``."""
    if raw is None:
        return None
    text = raw.strip().removeprefix("$")
    try:
        value = float(text)
    except ValueError:
        raise ValidationError.single("max_cost", f"{raw!r} is not an amount of US dollars") from None
    if not math.isfinite(value) or value < 0 or value > _MAX_USD:
        raise ValidationError.single("max_cost", f"{raw!r} must be between 0 and {_MAX_USD:,.0f} US dollars")
    return value


def estimate_document(est: CostEstimate) -> dict[str, Any]:
    doc: dict[str, Any] = attrs.asdict(est)
    doc["text"] = est.describe()
    return doc


def _request_problems(request: EditRequest) -> None:
    """What is wrong with the request on any host (a dangling @Image3, a missing file)."""
    own = check_references(request) + check_local_media(request)
    if own:
        raise ValidationError(own)


def capability_problems(client: AsyncEditClient, name: str, request: EditRequest) -> list[Problem]:
    """Why provider ``name`` cannot serve ``request``, from its capability data alone (no key needed)."""
    cls = client.host.provider_class(name)
    problems = check_against(request, cls.capabilities, cls.name)
    if not cls.capabilities.accepts_local_files and client.host.uploader(cls.name) is not None:
        problems = [p for p in problems if p.message != URLS_ONLY]
    return problems


def key_missing(client: AsyncEditClient, name: str) -> bool:
    try:
        client.provider(name)
    except MissingKeyError:
        return True
    except KlingError:
        return False
    return False


def comparison(client: AsyncEditClient, request: EditRequest) -> list[dict[str, Any]]:
    """One row per installed provider: can it serve the request, and at what estimate."""
    _request_problems(request)
    rows = []
    for name in sorted(client.host.providers):
        cls = client.host.provider_class(name)
        if cls.name != name:
            continue  # an alias: its provider has its own row
        problems = capability_problems(client, name, request)
        est = estimate(cls.name, cls.capabilities, request) if not problems else None
        rows.append({"provider": name, "capable": not problems,
                     "problems": [{"path": p.path, "message": p.message} for p in problems],
                     "key_missing": key_missing(client, name),
                     "estimate": estimate_document(est) if est is not None else None})

    def order(row: Mapping[str, Any]) -> tuple[int, float, str]:
        usd = (row["estimate"] or {}).get("usd")
        return (0 if row["capable"] else 1, usd if usd is not None else math.inf, row["provider"])

    return sorted(rows, key=order)


def print_comparison(client: AsyncEditClient, request: EditRequest, *, as_json: bool, max_cost: float | None) -> int:
    rows = comparison(client, request)
    if as_json:
        click.echo(json.dumps({"request": {"model": request.model, "quality": request.quality,
                                           "edit_mode": request.edit_mode}, "max_cost": max_cost,
                               "providers": rows}, indent=2))
        return 0
    click.echo(f"estimates for {request.model} {request.quality} ({request.edit_mode}); nothing was submitted")
    # Hosts refusing for the same reason share a line (most refuse a local file alike).
    refusing: dict[str, list[str]] = {}
    for row in rows:
        if not row["capable"]:
            why = "; ".join(f"{p['path']}: {p['message']}" for p in row["problems"])
            refusing.setdefault(why, []).append(row["provider"])
            continue
        est = row["estimate"]
        flags = []
        if row["key_missing"]:
            flags.append("no key set")
        if max_cost is not None:
            cost = CostEstimate(**{k: v for k, v in est.items() if k != "text"})
            if cost.usd is None:
                flags.append("--max-cost refuses an unknown price")
            elif over_budget(cost, max_cost) is not None:
                flags.append(f"over --max-cost {format_usd(max_cost)}")
        click.echo(f"  {est['text']}" + (f" [{', '.join(flags)}]" if flags else ""))
    for why, names in refusing.items():
        click.echo(f"  {', '.join(names)}: cannot serve it ({why})")
    return 0


async def print_dry_run(client: AsyncEditClient, request: EditRequest, chain: Sequence[str], *, as_json: bool,
                        max_cost: float | None) -> int:
    """Check the request on the first host of the list that can serve it, run that host's own
    dry run where it has one and its key is set, and print the estimate; refuse (exit 2) what
    ``max_cost`` would refuse. A missing key does not stop the estimate."""
    _request_problems(request)
    served, skipped, refusals = None, [], []
    keyless: tuple[str, CostEstimate, str] | None = None  # the first capable host without a key
    for name in chain:
        problems = capability_problems(client, name, request)
        if problems:
            skipped.append({"provider": name, "reason": "; ".join(f"{p.path}: {p.message}" for p in problems)})
            if len(chain) == 1:
                raise ValidationError([Problem(p.path, f"{p.message} (provider {name!r})") for p in problems])
            refusals.append(Problem("provider", f"{name} cannot serve it: {skipped[-1]['reason']}"))
            continue
        cls = client.host.provider_class(name)
        est = estimate(cls.name, cls.capabilities, request)
        why = over_budget(est, max_cost) if max_cost is not None else None
        if why is not None:  # as the real run does: a host over budget is passed over
            skipped.append({"provider": name, "reason": why})
            refusals.append(Problem("max_cost", why))
            continue
        no_key = None
        try:
            client.check(request, name)  # the provider's own checks too, where its key is set
        except MissingKeyError as exc:
            no_key = str(exc)
            if len(chain) > 1:  # as the real run does: a host without a key is passed over
                keyless = keyless or (name, est, no_key)
                skipped.append({"provider": name, "reason": no_key})
                refusals.append(Problem("provider", no_key))
                continue
        except UnsupportedError as exc:
            if len(chain) == 1:
                raise
            skipped.append({"provider": name, "reason": "; ".join(f"{p.path}: {p.message}" for p in exc.problems)})
            refusals.append(Problem("provider", f"{name} cannot serve it: {skipped[-1]['reason']}"))
            continue
        served = name
        break
    if served is None and keyless is not None:
        # No host of the list could be sent the job, some only for want of a key: price the
        # first of those (a missing key does not stop a dry run).
        served, est, no_key = keyless
        cls = client.host.provider_class(served)
        skipped = [s for s in skipped if s["provider"] != served]
    if served is None:
        raise ValidationError(refusals)
    answer: Mapping[str, Any] | None = None
    if no_key is None and cls.capabilities.supports_dry_run:
        answer = await client.provider(served).dry_run(request)
    if as_json:
        doc = dict(answer) if answer is not None else {"provider": served, "host_dry_run": False}
        if no_key is not None:
            doc["key_missing"] = no_key
        doc["cost_estimate"] = estimate_document(est)
        if skipped:
            doc["passed_over"] = skipped
        click.echo(json.dumps(doc, indent=2))
    else:
        from kling_core.cli.job_cmd import dry_run_lines

        for s in skipped:
            click.echo(f"passed over {s['provider']}: {s['reason']}")
        if answer is not None:
            click.echo("\n".join(dry_run_lines(served, answer)))
        elif no_key is not None:
            click.echo(f"dry run on {served}: no job was created (checked against its capabilities only: {no_key})")
        else:
            click.echo(f"dry run on {served}: no job was created (checked against its capabilities; "
                       "the host has no dry run of its own)")
        click.echo(f"estimate: {est.describe()}")
    return 0
