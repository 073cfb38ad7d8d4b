"""Providers declared in config: `[providers.NAME] uses = "BASE"` is BASE's wire format under a
new name with its own settings; listed by `kling providers`, tested by `kling contract`, and
used end to end against the emulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from media_fixtures import LoopbackServer, loopback, sample  # noqa: F401 - fixtures

from kling_core.client import EditClient
from kling_core.config import config_from_document
from kling_core.errors import ConfigError
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia
from kling_core.plugins import PluginHost, base_provider, uses_of

TEAM2 = """
[providers.team2]
uses = "kling"
base_url = "https://api-beijing.klingai.com"
credentials.access_key = "env:TEAM2_ACCESS"
credentials.secret_key = "env:TEAM2_SECRET"
"""


def _cli(tmp_path: Path, toml: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "kling.toml").write_text(toml, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "TEAM2_"))}
    env.update({"KLING_CONFIG_DIR": str(tmp_path / "user"), "KLING_CONFIG": str(tmp_path / "kling.toml"),
                "KLING_STATE_DIR": str(tmp_path / "state"), "KLING_CACHE_DIR": str(tmp_path / "cache")})
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def _host(doc: dict[str, Any]) -> PluginHost:
    host = PluginHost()
    host.declare(config_from_document(doc, source="kling.toml"))
    return host


def test_declared_provider_is_a_subclass_with_its_own_name() -> None:
    host = _host({"providers": {"team2": {"uses": "kling"}, "team3": {"uses": "team2"}}})
    kling, team2, team3 = (host.provider_class(n) for n in ("kling", "team2", "team3"))
    assert issubclass(team2, kling) and team2.name == "team2" and kling.name == "kling"
    assert team2.capabilities == kling.capabilities and team2.credentials == kling.credentials
    assert (uses_of(team2), base_provider(team2)) == ("kling", "kling")
    assert (uses_of(team3), base_provider(team3)) == ("team2", "kling") and issubclass(team3, team2)
    assert uses_of(kling) is None and host.owner_of("team2") == host.owner_of("kling")


@pytest.mark.parametrize(("doc", "key", "reason"), [
    ({"team2": {"uses": "nope"}}, "providers.team2.uses", "unknown provider 'nope'"),
    ({"team2": {"uses": "team2"}}, "providers.team2.uses", "cannot use itself"),
    ({"a": {"uses": "b"}, "b": {"uses": "a"}}, "providers.b.uses", "cycle (a -> b -> a)"),
    ({"fal": {"uses": "kling"}}, "providers.fal.uses", "installed provider"),
])
def test_a_wrong_uses_is_a_config_error_naming_the_key(doc: dict[str, Any], key: str, reason: str) -> None:
    host = _host({"providers": doc})
    with pytest.raises(ConfigError) as info:
        host.provider_class("mock")
    assert info.value.key == key and reason in str(info.value) and info.value.file == "kling.toml"


def test_a_uses_that_is_not_a_provider_name_is_refused_by_the_config() -> None:
    with pytest.raises(Exception, match=r"providers\.x\.uses"):
        config_from_document({"providers": {"x": {"uses": " fal"}}})


@pytest.mark.parametrize("toml", ['[providers.team2]\nuses = "nope"\n', '[providers.team2]\nuses = "team2"\n'])
def test_cli_refuses_a_wrong_uses_with_exit_2(tmp_path: Path, toml: str) -> None:
    for args in (("providers", "--json"), ("edit", "v.mp4", "-p", "x", "--provider", "team2")):
        done = _cli(tmp_path, toml, *args)
        assert done.returncode == 2, done.stderr
        assert "providers.team2.uses" in done.stderr


def test_kling_providers_lists_a_declared_provider(tmp_path: Path) -> None:
    done = _cli(tmp_path, TEAM2, "providers", "--json")
    assert done.returncode == 0, done.stderr
    rows = {p["name"]: p for p in json.loads(done.stdout)["providers"]}
    team2, kling = rows["team2"], rows["kling"]
    assert team2["uses"] == "kling" and kling["uses"] is None
    assert team2["keys"] == {"TEAM2_ACCESS": False, "TEAM2_SECRET": False}
    assert team2["models"] == kling["models"] and team2["capabilities"] == kling["capabilities"]
    assert team2["plugin"] == kling["plugin"]
    text = _cli(tmp_path, TEAM2, "providers")
    assert "team2: " in text.stdout and "uses kling" in text.stdout


def test_kling_contract_replays_the_base_providers_cassettes(tmp_path: Path) -> None:
    done = _cli(tmp_path, TEAM2, "contract", "team2")
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("team2 "))
    assert row.split()[-1] == "ok" and "passed" in row


@pytest.mark.ffmpeg
@pytest.mark.kling_emulator(hosts=["kling"])
def test_declared_kling_provider_edits_end_to_end(kling_emulator: Any, sample: SampleMedia,  # noqa: F811
                                                  loopback: LoopbackServer, tmp_path: Path) -> None:  # noqa: F811
    shutil.copy(sample.video, loopback.root / "clip.mp4")
    shutil.copy(sample.images[0], loopback.root / "ref.png")
    url = kling_emulator.urls["kling"]
    (tmp_path / "kling.toml").write_text("\n".join([
        "[media]", "allow_private_urls = true", "",
        "[providers.team2]", 'uses = "kling"', f'base_url = "{url}"',
        'credentials.access_key = "env:TEAM2_ACCESS"', 'credentials.secret_key = "env:TEAM2_SECRET"',
        "[providers.team2.poll]", "initial = 0.1", "max = 0.3", ""]))
    access, _, secret = kling_emulator.keys["kling"].partition(":")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}
    env.update({"TEAM2_ACCESS": access, "TEAM2_SECRET": secret, "KLING_CONFIG_DIR": str(tmp_path / "user"),
                "KLING_STATE_DIR": str(tmp_path / "state"), "KLING_CACHE_DIR": str(tmp_path / "cache")})
    done = subprocess.run([sys.executable, "-m", "kling_core", "edit", loopback.url("clip.mp4"), "-p",
                           "Regrade the scene in the colours of @Image1", "--image", loopback.url("ref.png"),
                           "--quality", "std", "--provider", "team2", "-o", "out.mp4", "--json",
                           "--config", "kling.toml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "team2" and result["job_id"].isdigit()
    assert (tmp_path / "out.mp4").read_bytes()[4:8] == b"ftyp"
    lines = "\n".join(kling_emulator.lines)
    assert '"POST /kling/v1/videos/omni-video" 200' in lines and "Traceback" not in lines


def test_python_api_uses_a_declared_provider_with_its_own_settings(tmp_path: Path) -> None:
    cfg = config_from_document({"providers": {"team2": {
        "uses": "kling", "base_url": "https://api-beijing.klingai.com", "timeout": 12,
        "credentials": {"access_key": "env:T2_A", "secret_key": "env:T2_S"}}}})
    with EditClient(config=cfg, environ={"T2_A": "a" * 16, "T2_S": "s" * 32},
                    journal=JobLog(tmp_path / "state")) as client:
        prov = client.aio.provider("team2")
        assert prov.name == "team2" and prov.ctx.settings.timeout == 12
        assert "api-beijing.klingai.com" in str(getattr(prov, "base_url", ""))
        assert prov.secrets["access_key"].reveal() == "a" * 16


def test_the_key_shorthand_names_the_first_credential_of_any_provider(tmp_path: Path) -> None:
    """`[providers.fal] key = "env:VAR"` reads VAR, though fal's credential is called api_key."""
    from kling_core.config import config_from_document
    from kling_core.plugins import PluginHost

    cfg = config_from_document({"providers": {"fal": {"key": "env:FAL_KEY_TEAM2"}}})
    fal = PluginHost(environ={}).provider_class("fal")
    assert fal.key_status(cfg.provider_settings("fal"), {"FAL_KEY_TEAM2": "k"}) == {"FAL_KEY_TEAM2": True}
    from kling_core.provider import ProviderContext

    provider = fal(ProviderContext(name="fal", settings=cfg.provider_settings("fal"), environ={"FAL_KEY_TEAM2": "k2"}))
    assert provider.secrets["api_key"].reveal() == "k2"
