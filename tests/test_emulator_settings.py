"""The emulator's settings file is structured by the project's cattrs helpers: every bad value
is named by its field, all at once, as a ConfigError naming the file (CLI exit 2, no traceback);
a host's own scripted outcomes are refused for the other hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import kling

from kling_core.emulator.settings import (
    HostSettings,
    check_failure,
    load_settings_file,
    settings_from_document,
)
from kling_core.errors import ConfigError


def test_a_good_file_sets_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text('render = "sample"\nrun_seconds = 2\nmedia_root = "~/clips"\n'
                    '[hosts.replicate]\nfail = "aborted"\nkeys = ["r8_x"]\n[hosts.kling]\nfail = "in_flight_limit"\n')
    settings = load_settings_file(path)
    assert settings.render == "sample" and settings.run_seconds == 2.0 and settings.queue_seconds == 0.5
    assert settings.media_root == Path("~/clips").expanduser()
    assert settings.host("replicate") == HostSettings(fail="aborted", keys=("r8_x",))
    assert settings.host("kling").fail == "in_flight_limit" and settings.host("fal") == HostSettings()


@pytest.mark.parametrize(("doc", "key", "reason"), [
    ({"render": "slow"}, "render", "'slow' is not one of full, fast, sample"),
    ({"queue_seconds": True}, "queue_seconds", "expected a number, got a boolean"),
    ({"retry_after": 4000}, "retry_after", "expected seconds from 0 to 3600, got 4000.0"),
    ({"media_root": " "}, "media_root", "must be a folder path"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"hosts": {"fal": {"fail": "nope"}}}, "hosts.fal.fail", "'nope' is not a scripted failure"),
    ({"hosts": {"fal": {"keys": ["a", ""]}}}, "hosts.fal.keys", "must be a list of non-empty strings"),
    ({"hosts": {"fal": {"key": "a"}}}, "hosts.fal.key", "unknown field"),
    ({"hosts": {"fal": {"fail": "aborted"}}}, "hosts.fal.fail", "'aborted' is scripted by replicate only"),
    ({"hosts": {"replicate": {"fail": "in_flight_limit"}}}, "hosts.replicate.fail", "scripted by kling only"),
])
def test_one_bad_setting_is_named_by_its_field(doc: dict[str, object], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_document(doc, source="emulator.toml")
    assert info.value.key == key and info.value.file == "emulator.toml" and reason in info.value.reason
    assert str(info.value).startswith(f"emulator.toml: {key}: ")


def test_every_bad_setting_is_listed_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_document({"render": "slow", "run_seconds": -1, "hosts": {"fal": {"keys": [""]}}},
                               source="emulator.toml")
    text = str(info.value)
    assert text.startswith("emulator.toml: 3 problems in the emulator settings:")
    for key in ("render", "run_seconds", "hosts.fal.keys"):
        assert f"\n  - {key}: " in text


def test_the_fail_option_knows_each_hosts_own_outcomes() -> None:
    assert check_failure("aborted", "fail.replicate", "replicate") == "aborted"
    with pytest.raises(ConfigError, match=r"fail\.fal: 'aborted' is scripted by replicate only"):
        check_failure("aborted", "fail.fal", "fal")


def test_kling_emulate_refuses_a_bad_settings_file_with_exit_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text("queue_seconds = \"soon\"\n")
    code, out, err = kling(capsys, "emulate", "--settings", str(path), "--port", "0")
    assert code == 2 and out == ""
    assert f"{path}: queue_seconds: expected a number, got a string" in err and "Traceback" not in err
