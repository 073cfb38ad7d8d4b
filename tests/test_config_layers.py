"""Config layers and secrets: (1) the `key = "env:VAR"` shorthand of a later layer wins over an
earlier layer's credentials for that provider, and one file may not give the shorthand next to a
`credentials.*` entry; (2) a URL setting may not carry a user name or password, and
`kling config show` prints URL settings redacted (no token-like query value)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling

from kling_core.config import config_from_document, load_config, user_config_file
from kling_core.errors import ConfigError
from kling_core.schema_store import validator
from kling_core.settings import CredentialSpec, resolve_credential

FAL = CredentialSpec("api_key", "FAL_KEY")
ENV = {"FAL_KEY_PERSONAL": "personal-account-key", "FAL_KEY_WORK": "work-account-key"}
PASSWORD = "fal-secret-0123456789abcdef"
TOKEN = "sk-live-abcdef0123456789"


def _user(text: str) -> Path:
    path = user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def _project(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "work"
    (root / ".git").mkdir(parents=True)
    (root / "kling.toml").write_text(text, "utf-8")
    return root


def _show(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = kling(capsys, "config", "show", "--json", *args)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


# --- (1) the key shorthand across layers and within one file --------------------------------


def test_a_project_key_shorthand_wins_over_the_user_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _user('[providers.fal]\ncredentials.api_key = "env:FAL_KEY_PERSONAL"\ntimeout = 12.0\n')
    root = _project(tmp_path, '[providers.fal]\nkey = "env:FAL_KEY_WORK"\n')
    fal = load_config(cwd=root).provider_settings("fal")
    assert fal.credentials == {"key": "env:FAL_KEY_WORK"}
    assert fal.timeout == 12.0  # the rest of the provider's table still merges key by key
    assert resolve_credential("fal", FAL, fal, ENV, first=True).reveal() == "work-account-key"
    monkeypatch.chdir(root)
    assert _show(capsys)["config"]["providers"]["fal"]["credentials"] == {"key": "env:FAL_KEY_WORK"}
    code, out, err = kling(capsys, "keys", "--json")
    assert code == 0, err
    row = next(r for r in json.loads(out)["keys"] if r["provider"] == "fal")
    assert row["reference"] == "env:FAL_KEY_WORK"


def test_a_project_credentials_key_wins_the_same_way(tmp_path: Path) -> None:
    _user('[providers.fal]\ncredentials.api_key = "env:FAL_KEY_PERSONAL"\n')
    root = _project(tmp_path, '[providers.fal.credentials]\nkey = "env:FAL_KEY_WORK"\n')
    fal = load_config(cwd=root).provider_settings("fal")
    assert resolve_credential("fal", FAL, fal, ENV, first=True).reveal() == "work-account-key"


def test_a_project_credential_by_name_still_merges_key_by_key(tmp_path: Path) -> None:
    # The other way round needs no special rule: the provider's own name wins over `key`.
    _user('[providers.fal]\nkey = "env:FAL_KEY_PERSONAL"\n'
          '[providers.kling.credentials]\naccess_key = "env:A_USER"\nsecret_key = "env:S_USER"\n')
    root = _project(tmp_path, '[providers.fal]\ncredentials.api_key = "env:FAL_KEY_WORK"\n'
                              '[providers.kling.credentials]\nsecret_key = "env:S_WORK"\n')
    cfg = load_config(cwd=root)
    fal = cfg.provider_settings("fal")
    assert resolve_credential("fal", FAL, fal, ENV, first=True).reveal() == "work-account-key"
    assert cfg.provider_settings("kling").credentials == {"access_key": "env:A_USER", "secret_key": "env:S_WORK"}


@pytest.mark.parametrize("credential", ["api_key", "secret_key"])
def test_one_file_giving_key_and_a_credential_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         credential: str) -> None:
    cfg = tmp_path / "kling.toml"
    cfg.write_text(f'[providers.fal]\nkey = "env:FAL_KEY_WORK"\ncredentials.{credential} = "env:FAL_KEY_PERSONAL"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert str(cfg) in message and "providers.fal.key" in message and f"credentials.{credential}" in message
    code, out, err = kling(capsys, "--config", str(cfg), "config", "show")
    assert code == 2 and out == ""
    assert "providers.fal.key" in err and f"credentials.{credential}" in err and "Traceback" not in err


def test_the_user_config_giving_key_and_a_credential_is_refused_naming_it(tmp_path: Path) -> None:
    user = _user('[providers.fal]\nkey = "env:FAL_KEY_WORK"\n[providers.fal.credentials]\napi_key = "env:X"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    assert str(user) in str(info.value) and "credentials.api_key" in str(info.value)


# --- (2) credentials inside URL settings ----------------------------------------------------


@pytest.mark.parametrize(("table", "field"), [
    ("providers.fal", "base_url"), ("webhooks", "public_url"), ("webhooks", "fal_jwks_url"),
])
def test_a_url_with_a_user_name_or_password_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       table: str, field: str) -> None:
    cfg = tmp_path / "kling.toml"
    cfg.write_text(f'[{table}]\n{field} = "https://me:{PASSWORD}@queue.fal.run/x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert f"{table}.{field}" in str(info.value) and "user name or password" in str(info.value)
    assert PASSWORD not in str(info.value)
    code, out, err = kling(capsys, "--config", str(cfg), "config", "show")
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"{table}.{field}" in err and PASSWORD not in err


def test_the_schema_refuses_a_url_with_userinfo_too() -> None:
    check = validator("config")
    assert list(check.iter_errors({"providers": {"fal": {"base_url": f"https://me:{PASSWORD}@h.example/"}}}))
    assert list(check.iter_errors({"webhooks": {"public_url": "https://token@h.example"}}))
    assert not list(check.iter_errors({"providers": {"fal": {"base_url": "https://h.example/a@b?x=c@d"}}}))


def test_a_url_with_an_at_sign_after_the_host_is_accepted() -> None:
    url = "https://h.example/users/@me?tag=a@b"
    assert config_from_document({"providers": {"fal": {"base_url": url}}}).provider_settings("fal").base_url == url


def test_config_show_redacts_a_token_in_a_url_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "kling.toml"
    cfg.write_text(f'[providers.fal]\nbase_url = "https://queue.fal.run/?key={TOKEN}&region=eu"\n'
                   f'[providers.fal.options]\nmirror = "https://m.example/?token={TOKEN}"\n'
                   f'[webhooks]\npublic_url = "https://hooks.example/in?sig={TOKEN}"\n')
    code, out, err = kling(capsys, "--config", str(cfg), "config", "show")
    assert code == 0, err
    assert TOKEN not in out and TOKEN not in err
    assert "region=eu" in out  # a harmless query parameter stays readable
    doc = _show(capsys, "--config", str(cfg))
    assert TOKEN not in json.dumps(doc)
    assert doc["config"]["providers"]["fal"]["base_url"].startswith("https://queue.fal.run/?key=")
    # What the provider uses is the configured URL itself; only the printout is redacted.
    assert load_config(cfg).provider_settings("fal").base_url == f"https://queue.fal.run/?key={TOKEN}&region=eu"


def test_the_schema_refuses_key_next_to_a_credential() -> None:
    check = validator("config")
    assert list(check.iter_errors({"providers": {"fal": {"key": "env:A", "credentials": {"api_key": "env:B"}}}}))
    assert not list(check.iter_errors({"providers": {"fal": {"key": "env:A", "credentials": {}}}}))
    cfg = config_from_document({"providers": {"fal": {"key": "env:A", "credentials": {}}}})
    assert cfg.provider_settings("fal").credentials == {"key": "env:A"}


def test_config_show_hides_the_query_of_a_url_it_cannot_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "kling.toml"
    cfg.write_text(f'[providers.fal]\nbase_url = "https://queue.fal.run:bad/?key={TOKEN}"\n'
                   f'[providers.fal.options]\nmirror = "https://u:{PASSWORD}@m.example:x/?a=1"\n')
    doc = _show(capsys, "--config", str(cfg))
    fal = doc["config"]["providers"]["fal"]
    assert fal["base_url"] == "https://queue.fal.run:bad/?***"
    assert fal["options"]["mirror"] == "https://m.example:x/?***"
