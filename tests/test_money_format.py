"""Every money figure the CLI shows is spelled by one formatter: ``kling batch --dry-run`` and
``kling jobs`` print the same amount the same way (thousands separators, cents)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import kling
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.cli import batch_cmd
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia
from kling_core.money import format_usd
from kling_core.pricing import CostEstimate

AMOUNT = 1234.5


def test_format_usd_groups_thousands_and_keeps_cents() -> None:
    assert format_usd(AMOUNT) == "$1,234.50"
    assert format_usd(0) == "$0.00" and format_usd(0.5) == "$0.50" and format_usd(1_000_000) == "$1,000,000.00"
    assert format_usd(0.0042) == "$0.0042"  # under a cent it does not read as free
    assert format_usd(0.00004) == "<$0.0001" and format_usd(-0.00004) == "-<$0.0001"  # nor below that
    assert format_usd(-1234.5) == "-$1,234.50" and format_usd(-0.004) == "-$0.0040"  # the sign before the $
    assert format_usd(-0.0) == "$0.00"


def test_batch_dry_run_and_kling_jobs_spell_an_amount_alike(sample: SampleMedia, tmp_path: Path,  # noqa: F811
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KLING_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.chdir(tmp_path)
    # The mock is free; price its line at four figures so the thousands separator shows.
    monkeypatch.setattr(batch_cmd, "estimate_cost", lambda client, request, provider: CostEstimate(
        provider=provider, model=request.model, quality=request.quality, seconds=None, usd=AMOUNT,
        source="test", as_of="2026-12-01", usd_per_run=AMOUNT))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"video": str(sample.video), "prompt": "night", "provider": "mock"}) + "\n")

    code, out, err = kling(capsys, "batch", str(manifest), "--dry-run", "--max-cost", "2000")
    assert code == 0, err
    row = out.splitlines()[2]
    assert " $1,234.50 " in row
    assert "estimated cost of the submits: $1,234.50" in out and "within --max-cost $2,000.00" in out
    code, out, err = kling(capsys, "batch", str(manifest), "--max-cost", "1000")
    assert code == 2
    assert "estimated at $1,234.50, over --max-cost $1,000.00" in err

    log = JobLog(tmp_path / "state")
    _record, created = log.claim(provider="fal", model="kling-o1", request={"k": 1}, request_sha256="k",
                                 client_key="big-job")
    assert created
    log.transition("big-job", "saved", estimate={"usd": AMOUNT, "upper_bound": False})
    log.close()
    code, out, err = kling(capsys, "jobs")
    assert code == 0, err
    assert "~$1,234.50" in out and out.splitlines()[-1].startswith("total: $1,234.50 over 1 finished job")
