"""Review fixes in the CLI: an unknown emulated host is refused before the emulator starts,
`kling demo` checks its config before writing sample media, a rate limit's wait reaches the
error document and the message, and `kling compare` says it takes local files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import kling
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.cli.common import error_text
from kling_core.cli.job_cmd import error_document
from kling_core.emulator import HOSTS, Emulator
from kling_core.emulator.settings import settings_from_document
from kling_core.errors import ConfigError, RateLimitedError
from kling_core.media import SampleMedia

DOCS = Path(__file__).resolve().parents[1] / "docs"
NOT_A_HOST = "'nohost' is not a host the emulator knows (emulated: "


@pytest.fixture
def never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """An emulator that gets as far as binding its port is a failed refusal: say so at once
    instead of serving until the test times out."""

    def started(self: Emulator) -> None:
        raise AssertionError("the emulator was started")

    monkeypatch.setattr(Emulator, "prepare", started)


# --- F2: an unknown host in --fail or [hosts.NAME] -------------------------------------------


def test_a_settings_file_naming_an_unknown_host_is_refused_by_its_table() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_document({"hosts": {"nohost": {"fail": "content_policy"}}}, source="emulator.toml")
    assert info.value.key == "hosts.nohost" and info.value.file == "emulator.toml"
    assert info.value.reason.startswith(NOT_A_HOST)


def test_an_unknown_host_is_listed_with_the_other_problems_of_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_document({"hosts": {"nohost": {}, "fal": {"fail": "nope"}}}, source="emulator.toml")
    text = str(info.value)
    assert text.startswith("emulator.toml: 2 problems in the emulator settings:")
    assert f"\n  - hosts.nohost: {NOT_A_HOST}" in text and "\n  - hosts.fal.fail: 'nope' is not" in text


def test_emulate_fail_for_an_unknown_host_exits_2_without_starting(
        never_started: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kling(capsys, "emulate", "--port", "0", "--hosts", "fal", "--fail", "nohost=content_policy")
    assert (code, out) == (2, "") and "Traceback" not in err
    assert err.startswith(f"error: fail: {NOT_A_HOST}")


def test_emulate_settings_file_with_an_unknown_host_exits_2_without_starting(
        never_started: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text('[hosts.nohost]\nfail = "content_policy"\n')
    code, out, err = kling(capsys, "emulate", "--port", "0", "--settings", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}: hosts.nohost: {NOT_A_HOST}")


def test_emulate_help_and_docs_name_every_emulated_host(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = kling(capsys, "emulate", "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert f"Emulated hosts: {', '.join(HOSTS)}." in flat
    default = re.search(r"^\| `--hosts ([a-z,]+)` \|", (DOCS / "emulator.md").read_text("utf-8"), re.M)
    assert default is not None and default.group(1) == ",".join(HOSTS)


# --- F6: kling demo with a bad config -------------------------------------------------------


def test_demo_with_a_bad_config_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    folder = tmp_path / "demo"
    code, out, err = kling(capsys, "--config", str(bad), "demo", "--dir", str(folder), "-q")
    assert (code, out) == (2, "") and err.startswith(f"error: {bad}") and "Traceback" not in err
    assert not folder.exists()


# --- F7: a rate limit's wait in the error document and the message --------------------------


def test_the_error_document_carries_retry_after_in_seconds() -> None:
    doc = error_document(RateLimitedError("slow down", provider="fal", status_code=429, retry_after=7.5))
    assert doc["type"] == "RateLimitedError" and doc["retry_after"] == 7.5
    assert "retry_after" not in error_document(RateLimitedError("slow down", provider="fal"))


@pytest.mark.parametrize(("message", "wait", "text"), [
    ("rate limited", 7.0, "fal: rate limited; retry after 7s"),
    ("rate limited", 0.5, "fal: rate limited; retry after 0.5s"),
    ("the host asked to wait 300 s before fetching", 300.0, "fal: the host asked to wait 300 s before fetching"),
    ("try again in 12 seconds", 12.0, "fal: try again in 12 seconds"),
    ("rate limited", None, "fal: rate limited"),
])
def test_the_message_names_the_wait_unless_it_says_it_already(message: str, wait: float | None, text: str) -> None:
    assert error_text(RateLimitedError(message, provider="fal", retry_after=wait)) == text


def test_edit_on_a_rate_limit_reports_the_wait(sample: SampleMedia,  # noqa: F811 - fixture
                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("edit", str(sample.video), "-p", "x", "--provider", "mock", "-O", "fail=rate_limited",
            "-O", "retry_after=7", "-q", "-o", str(tmp_path / "out.mp4"))
    code, out, err = kling(capsys, *args, "--json")
    assert code == 1
    doc = json.loads(out)["error"]
    assert doc["type"] == "RateLimitedError" and doc["retry_after"] == 7
    code, out, err = kling(capsys, *args)
    assert code == 1 and "; retry after 7s" in err


# --- kling compare with a URL ---------------------------------------------------------------


@pytest.mark.parametrize(("args", "field", "url"), [
    (["http://host/x.mp4", "out.mp4"], "INPUT", "http://host/x.mp4"),
    (["in.mp4", "https://host/y.mp4"], "OUTPUT", "https://host/y.mp4"),
])
def test_compare_refuses_a_url_saying_it_takes_local_files(args: list[str], field: str, url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = kling(capsys, "compare", *args, "-o", "sheet.png")
    assert (code, out) == (2, "")
    assert err == f"error: {field}: {url} is a URL: kling compare takes local files (download it first)\n"
    assert not (tmp_path / "sheet.png").exists()
