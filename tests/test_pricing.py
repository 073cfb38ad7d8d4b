"""Cost before paying (issue 12, part 3): estimates from the providers' price data, the
``--dry-run`` / ``--compare`` output, and ``--max-cost`` refusing before any submit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling
from kling_core_plugins.fal.endpoints import CAPABILITIES as FAL
from kling_core_plugins.segmind.wire import CAPABILITIES as SEGMIND
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.client import EditClient
from kling_core.config import KlingConfig, config_from_document
from kling_core.contract.capabilities import Price, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.errors import ValidationError
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia
from kling_core.plugins import PluginHost
from kling_core.pricing import estimate, estimate_cost, find_price, over_budget

URL = "https://example.com/clip.mp4"
FIRST_PARTY = ("mock", "fal", "segmind", "unifically", "kling")


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KLING_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.setenv("KLING_PLUGINS", ",".join(FIRST_PARTY))
    for var in ("FAL_KEY", "SEGMIND_API_KEY", "UNIFICALLY_API_KEY", "KLING_ACCESS_KEY", "KLING_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


# -- the price data ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIRST_PARTY)
def test_every_published_price_says_where_and_when(name: str) -> None:
    caps = PluginHost().provider_class(name).capabilities
    for price in caps.prices:
        assert (price.usd_per_second is None) != (price.usd_per_run is None), price
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price.as_of), price
        assert price.source.startswith("https://") or name == "mock", price
        assert caps.model(price.model) is not None and price.quality in ("std", "pro"), price
        rate = price.usd_per_second if price.usd_per_second is not None else price.usd_per_run
        assert rate is not None and rate >= 0


def test_fal_o3_pro_edit_is_its_published_figure() -> None:
    price = find_price(FAL.prices, "kling-o3", "pro", "edit")
    assert price is not None and price.usd_per_second == 0.336 and not price.note  # read on its own page


def test_a_mode_specific_price_wins_over_the_general_one() -> None:
    general = Price(model="kling-o1", quality="pro", source="s", as_of="2026-12-01", usd_per_second=0.1)
    reference = Price(model="kling-o1", quality="pro", source="s", as_of="2026-12-01", usd_per_second=0.2,
                      edit_mode="reference")
    assert find_price((general, reference), "kling-o1", "pro", "reference") is reference
    assert find_price((general, reference), "kling-o1", "pro", "edit") is general
    assert find_price((general,), "kling-o1", "std", "edit") is None


# -- estimates --------------------------------------------------------------------------------
def test_a_local_video_is_probed_for_its_seconds(sample: SampleMedia) -> None:  # noqa: F811
    request = EditRequest(prompt="x", video=str(sample.video), model="kling-o3", quality="pro")
    est = estimate("fal", FAL, request)
    assert est.seconds == pytest.approx(3.2, abs=0.1) and not est.upper_bound
    assert est.usd == pytest.approx(est.seconds * 0.336, abs=1e-3)
    assert est.describe().startswith(f"fal: ${est.usd:.2f} (")


def test_a_url_without_a_duration_is_an_upper_bound() -> None:
    est = estimate("fal", FAL, EditRequest(prompt="x", video=URL, model="kling-o1", quality="std"))
    assert est.upper_bound and est.seconds == 10.05
    assert est.usd == pytest.approx(10.05 * 0.126)
    assert est.describe().startswith("fal: at most $1.27")


def test_a_reference_duration_is_the_output_length() -> None:
    request = EditRequest(prompt="x", video=URL, model="kling-o1", quality="pro", edit_mode="reference", duration=5)
    est = estimate("fal", FAL, request)
    assert est.seconds == 5 and not est.upper_bound and est.usd == pytest.approx(0.84)


def test_a_minimum_billed_length_counts_a_shorter_output_as_that_long() -> None:
    price = Price(model="kling-o1", quality="pro", source="s", as_of="2026-12-01", usd_per_second=0.1,
                  min_seconds=5.0)
    caps = ProviderCapabilities(models=FAL.models, prices=(price,))

    def priced(duration: int) -> Any:
        return estimate("h", caps, EditRequest(prompt="x", video=URL, model="kling-o1", quality="pro",
                                               edit_mode="reference", duration=duration))

    short, long = priced(3), priced(7)
    assert (short.seconds, short.billed_seconds, short.usd) == (3, 5.0, pytest.approx(0.5))
    assert "3 s billed as 5 s, the host's minimum, x $0.1/s" in short.describe()
    assert over_budget(short, 0.45) is not None  # 3 s x $0.1 would have passed this cap
    assert (long.seconds, long.billed_seconds, long.usd) == (7, 7, pytest.approx(0.7))
    assert "billed as" not in long.describe()


def test_wavespeed_bills_a_short_local_edit_as_five_seconds(sample: SampleMedia) -> None:  # noqa: F811
    from kling_core_plugins.wavespeed.wire import CAPABILITIES as WAVESPEED

    est = estimate("wavespeed", WAVESPEED, EditRequest(prompt="x", video=str(sample.video), model="kling-o1",
                                                       quality="std"))
    assert est.seconds == pytest.approx(3.2, abs=0.1) and est.billed_seconds == 5.0
    assert est.usd == pytest.approx(5 * 0.126)


def test_a_per_run_price_ignores_the_seconds() -> None:
    est = estimate("segmind", SEGMIND, EditRequest(prompt="x", video=URL, model="kling-o1", quality="pro"))
    assert est.usd == 1.30 and est.seconds is None and not est.upper_bound


def test_no_price_is_an_unknown_estimate_and_breaks_any_budget() -> None:
    est = estimate("x", ProviderCapabilities(models=()), EditRequest(prompt="x", video=URL))
    assert est.usd is None and "price unknown" in est.describe()
    assert "unknown" in (over_budget(est, 100.0) or "")
    known = estimate("segmind", SEGMIND, EditRequest(prompt="x", video=URL))
    assert over_budget(known, 1.30) is None and "over max_cost $1.29" in (over_budget(known, 1.29) or "")


def test_estimate_cost_needs_no_key() -> None:
    client = EditClient(config=KlingConfig(), use_journal=False, environ={})
    try:
        est = estimate_cost(client, EditRequest(prompt="x", video=URL, model="kling-o3"), "fal")
    finally:
        client.close()
    assert est.provider == "fal" and est.usd == pytest.approx(10.05 * 0.336)


# -- the CLI ----------------------------------------------------------------------------------
def test_compare_prints_every_capable_host_cheapest_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kling(capsys, "edit", URL, "-p", "make it night", "--model", "kling-o3", "--dry-run", "--compare")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "estimates for kling-o3 pro (edit); nothing was submitted"
    rows = {line.split(":")[0].strip(): line for line in lines[1:]}
    assert rows["fal"].strip().startswith("fal: at most $3.38 (10.05 s x $0.336/s") and "[no key set]" in rows["fal"]
    assert "price unknown" in rows["segmind"] and "price unknown" in rows["kling"]
    assert rows["mock"].strip().startswith("mock: at most $0.00")
    order = [line.split(":")[0].strip() for line in lines[1:]]
    assert order.index("mock") < order.index("fal") < order.index("segmind")  # known prices first, cheapest first


def test_compare_json_says_why_a_host_cannot_serve_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kling(capsys, "edit", URL, "-p", "make it night", "--model", "kling-o1",
                           "--element", "https://example.com/f.png:https://example.com/r.png", "--compare", "--json")
    assert code == 0, err
    rows = {row["provider"]: row for row in json.loads(out)["providers"]}
    assert rows["unifically"]["capable"] is False  # its O1 edit takes images only
    assert rows["unifically"]["problems"][0]["path"].startswith("elements")
    assert rows["fal"]["capable"] and rows["fal"]["estimate"]["usd_per_second"] == 0.168
    assert rows["fal"]["estimate"]["source"].startswith("https://")


def test_compare_names_hosts_refusing_alike_on_one_line(capsys: pytest.CaptureFixture[str],
                                                        sample: SampleMedia) -> None:  # noqa: F811
    # A local file: every URL-only host refuses it for the same reason, said once after the estimates.
    code, out, err = kling(capsys, "edit", str(sample.video), "-p", "make it night", "--dry-run", "--compare")
    assert code == 0, err
    refusals = [line for line in out.splitlines() if "cannot serve it" in line]
    assert len(refusals) == 1, out
    names = refusals[0].split(":")[0].strip().split(", ")
    assert {"kling", "segmind", "unifically"} <= set(names)
    assert out.splitlines()[-1] == refusals[0]


def test_dry_run_prints_the_estimate_without_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kling(capsys, "edit", URL, "-p", "make it night", "--provider", "fal", "--dry-run")
    assert code == 0, err
    assert "dry run on fal: no job was created" in out and "FAL_KEY" in out
    assert "estimate: fal: at most $1.69" in out


def test_dry_run_json_carries_the_estimate(capsys: pytest.CaptureFixture[str], sample: SampleMedia) -> None:  # noqa: F811
    code, out, err = kling(capsys, "edit", str(sample.video), "-p", "make it night", "--dry-run", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["valid"] is True and doc["cost_estimate"]["usd"] == 0.0  # the mock is free


@pytest.mark.parametrize("raw", ["abc", "-1", "inf", "nan"])
def test_a_bad_max_cost_is_refused_naming_the_field(capsys: pytest.CaptureFixture[str], raw: str) -> None:
    code, _out, err = kling(capsys, "edit", URL, "-p", "x", "--max-cost", raw)
    assert code == 2 and "max_cost" in err and "Traceback" not in err


def test_dry_run_with_max_cost_refuses_and_passes_over_like_the_real_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = kling(capsys, "edit", URL, "-p", "x", "--provider", "fal", "--dry-run", "--max-cost", "1")
    assert code == 2
    assert "max_cost: the estimate on fal is at most $1.69, over max_cost $1.00" in err
    code, out, err = kling(capsys, "edit", URL, "-p", "x", "--provider", "fal,unifically", "--dry-run",
                           "--max-cost", "$1")
    assert code == 0, err
    assert out.startswith("passed over fal: the estimate on fal is at most $1.69")
    assert "estimate: unifically: at most $0.48" in out


def test_dry_run_of_a_list_prices_the_host_the_run_would_use(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The run passes over a host without a key: so does the dry run, and it prices the next one.
    monkeypatch.setenv("FAL_KEY", "fake-key:fake")
    code, out, err = kling(capsys, "edit", URL, "-p", "x", "--quality", "std", "--provider", "unifically,fal",
                           "--dry-run")
    assert code == 0, err
    assert out.startswith("passed over unifically: provider 'unifically' needs a key")
    assert "estimate: fal: at most $1.27" in out
    monkeypatch.delenv("FAL_KEY")  # no host has a key: the first capable one is still priced
    code, out, err = kling(capsys, "edit", URL, "-p", "x", "--quality", "std", "--provider", "unifically,fal",
                           "--dry-run")
    assert code == 0, err
    assert "dry run on unifically" in out and "estimate: unifically: at most $0.48" in out


# -- --max-cost refuses before anything reaches the host --------------------------------------
def _kling_process(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "KLING_CONFIG_DIR": str(cwd / "user-config"),
                "KLING_STATE_DIR": str(cwd / "state"), "KLING_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=180, check=False)


@pytest.mark.ffmpeg
@pytest.mark.kling_emulator(hosts=("fal",))
def test_max_cost_refuses_before_any_request_reaches_the_host(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                              tmp_path: Path) -> None:
    (tmp_path / "kling.toml").write_text(kling_emulator.kling_config())
    before = len(kling_emulator.lines)
    done = _kling_process(["edit", str(sample.video), "-p", "make it night", "--provider", "fal",
                           "--max-cost", "0.50", "-o", "out.mp4"], tmp_path, kling_emulator.environ())
    assert done.returncode == 2, done.stderr
    assert "max_cost: the estimate on fal is $0.5" in done.stderr and "over max_cost $0.50" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out.mp4").exists()
    assert kling_emulator.lines[before:] == []  # no upload, no submit: nothing reached the host

    # The same through the Python API, and with a budget the job fits it goes through.
    doc = {"media": {"allow_private_urls": True},
           "providers": {"fal": {"base_url": kling_emulator.urls["fal"], "poll": {"initial": 0.05, "max": 0.2},
                                 "options": {"storage_url": f"{kling_emulator.urls['fal']}/rest",
                                             "cdn_url": f"{kling_emulator.urls['fal']}/cdn"}}}}
    with EditClient(provider="fal", config=config_from_document(doc), environ=kling_emulator.environ(),
                    journal=JobLog(tmp_path / "api-state")) as client:
        request = client.request(str(sample.video), "make it night")
        with pytest.raises(ValidationError, match="max_cost"):
            client.submit(request, max_cost=0.25)
        assert kling_emulator.lines[before:] == []
        handle = client.submit(request, max_cost=1.0)
        record = client.jobs()[0]
    assert handle.provider == "fal" and record.estimate is not None
    assert record.estimate["usd"] == pytest.approx(record.estimate["seconds"] * 0.168, abs=1e-3)


def test_kling_providers_json_carries_the_prices(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kling(capsys, "providers", "--json")
    assert code == 0, err
    infos = {p["name"]: p for p in json.loads(out)["providers"]}
    fal = {(p["model"], p["quality"]): p for p in infos["fal"]["capabilities"]["prices"]}
    assert fal[("kling-o3", "pro")]["usd_per_second"] == 0.336
    assert fal[("kling-o3", "pro")]["source"].startswith("https://fal.ai/") and fal[("kling-o3", "pro")]["as_of"]
    assert infos["kling"]["capabilities"]["prices"] == [] and infos["mock"]["fallback_position"] == 0
    code, out, err = kling(capsys, "providers")
    assert "  prices: kling-o1 pro $1.3/job (as of 2026-12-01; sources in --json)" in out  # Segmind
