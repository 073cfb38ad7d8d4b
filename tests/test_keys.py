"""Issue 13: credentials from the system keyring (``keyring:SERVICE/NAME``) and ``kling keys``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling

from kling_core import settings as settings_mod
from kling_core.config import config_from_document
from kling_core.errors import ConfigError, MissingKeyError, ValidationError
from kling_core.schema_store import validator
from kling_core.settings import (
    CredentialSpec,
    ProviderSettings,
    Secret,
    credential_status,
    resolve_credential,
)

keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend  # noqa: E402

CANARY = "sk-CANARY-7f3e9d1c-never-print-me"
SPEC = CredentialSpec(name="api_key", env="FAL_KEY")


class FakeKeyring(KeyringBackend):
    """An in-memory keyring backend."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, data: dict[tuple[str, str], str] | None = None) -> None:
        super().__init__()
        self.data = dict(data or {})
        self.reads: list[tuple[str, str]] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((service, username))
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.data.pop((service, username), None)


class BrokenKeyring(FakeKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError(f"backend exploded near {CANARY}")


@pytest.fixture
def fake_keyring() -> Iterator[FakeKeyring]:
    before = keyring.get_keyring()
    backend = FakeKeyring({("kling", "fal"): CANARY})
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(before)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kling.toml"
    path.write_text(text)
    return str(path)


# --- references in config ------------------------------------------------------------------

@pytest.mark.parametrize("ref", ["keyring:kling/fal", "keyring:my.service/team-2/fal_key", "env:FAL_KEY"])
def test_references_accepted_by_models_and_schema(ref: str) -> None:
    for doc in ({"providers": {"fal": {"key": ref}}}, {"providers": {"fal": {"credentials": {"api_key": ref}}}}):
        cfg = config_from_document(doc)
        assert "api_key" in cfg.providers["fal"].credentials or "key" in cfg.providers["fal"].credentials
        assert not list(validator("config").iter_errors(doc))


@pytest.mark.parametrize("ref", ["keyring:", "keyring:kling", "keyring:kling/", "keyring:/fal", "keyring:a b/c", CANARY])
def test_bad_references_rejected_by_both(ref: str) -> None:
    doc = {"providers": {"fal": {"credentials": {"api_key": ref}}}}
    with pytest.raises(ValidationError) as info:
        config_from_document(doc)
    assert "keyring:SERVICE/NAME" in str(info.value)
    assert list(validator("config").iter_errors(doc))
    with pytest.raises(ValidationError):
        config_from_document({"providers": {"fal": {"key": ref}}})


def test_a_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValidationError):
        config_from_document({"providers": {"fal": {"key": "keyring:kling/fal\n"}}})


# --- resolving -----------------------------------------------------------------------------

def test_resolved_from_the_keyring(fake_keyring: FakeKeyring) -> None:
    s = ProviderSettings(credentials={"key": "keyring:kling/fal"})
    secret = resolve_credential("fal", SPEC, s, {"FAL_KEY": "from-env"}, first=True)
    assert secret == Secret(CANARY) and secret.reveal() == CANARY
    assert CANARY not in repr(secret) and CANARY not in str(secret)
    assert fake_keyring.reads == [("kling", "fal")]


def test_missing_keyring_entry_names_the_reference(fake_keyring: FakeKeyring) -> None:
    s = ProviderSettings(credentials={"api_key": "keyring:kling/other"})
    with pytest.raises(MissingKeyError) as info:
        resolve_credential("fal", SPEC, s, {"FAL_KEY": "from-env"})
    assert "keyring:kling/other" in str(info.value) and "environment variable" not in str(info.value)


def test_a_backend_failure_is_a_config_error_without_its_text() -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        with pytest.raises(ConfigError) as info:
            resolve_credential("fal", SPEC, ProviderSettings(credentials={"api_key": "keyring:kling/fal"}), {})
    finally:
        keyring.set_keyring(before)
    assert "providers.fal.credentials.api_key" in str(info.value) and "RuntimeError" in str(info.value)
    assert CANARY not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


def test_an_injected_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_mod, "keyring_reader", lambda service, name: f"{service}:{name}")
    s = ProviderSettings(credentials={"api_key": "keyring:svc/name"})
    assert resolve_credential("fal", SPEC, s, {}).reveal() == "svc:name"


def test_keyring_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # `import keyring` raises ImportError
    s = ProviderSettings(credentials={"key": "keyring:kling/fal"})
    with pytest.raises(ConfigError) as info:
        resolve_credential("fal", SPEC, s, {}, first=True)
    msg = str(info.value)
    assert "providers.fal.credentials.api_key" in msg and "pip install 'kling-core[keyring]'" in msg
    assert not isinstance(info.value, MissingKeyError) and info.value.exit_code == 2
    row = credential_status("fal", SPEC, s, {}, first=True)
    assert row["set"] is False and row["source"] == "not set" and "kling-core[keyring]" in row["error"]


def test_env_references_do_not_touch_the_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    assert resolve_credential("fal", SPEC, ProviderSettings(), {"FAL_KEY": "x"}).reveal() == "x"


# --- kling keys ----------------------------------------------------------------------------

def _rows(out: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["provider"], r["credential"]): r for r in json.loads(out)["keys"]}


def test_kling_keys_json(fake_keyring: FakeKeyring, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, '[providers.fal]\nkey = "keyring:kling/fal"\n'
                                 '[providers.segmind]\nkey = "keyring:kling/segmind"\n')
    monkeypatch.setenv("KLING_ACCESS_KEY", CANARY + "-env")
    monkeypatch.setenv("FAL_KEY", CANARY + "-shadowed")  # the config points fal at the keyring
    code, out, err = kling(capsys, "keys", "--json", "--config", cfg)
    assert code == 0, err
    rows = _rows(out)
    assert rows[("fal", "api_key")] == {"provider": "fal", "credential": "api_key", "reference": "keyring:kling/fal",
                                        "set": True, "source": "keyring:kling/fal"}
    assert rows[("segmind", "api_key")]["set"] is False and rows[("segmind", "api_key")]["source"] == "not set"
    assert rows[("kling", "access_key")] == {"provider": "kling", "credential": "access_key",
                                             "reference": "env:KLING_ACCESS_KEY", "set": True,
                                             "source": "env:KLING_ACCESS_KEY"}
    assert rows[("kling", "secret_key")]["source"] == "not set"
    assert ("mock", "api_key") not in rows  # the mock needs no key
    assert CANARY not in out and CANARY not in err


def test_kling_keys_text_never_prints_a_value(fake_keyring: FakeKeyring, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, '[providers.fal]\nkey = "keyring:kling/fal"\n')
    monkeypatch.setenv("SEGMIND_API_KEY", CANARY)
    code, out, err = kling(capsys, "keys", "--config", cfg)
    assert code == 0, err
    assert "fal.api_key: keyring:kling/fal" in out
    assert "segmind.api_key: env:SEGMIND_API_KEY" in out
    assert "unifically.api_key: not set (env:UNIFICALLY_API_KEY)" in out
    assert CANARY not in out and CANARY not in err


def test_kling_keys_without_the_keyring_package(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, '[providers.fal]\nkey = "keyring:kling/fal"\n')
    monkeypatch.setitem(sys.modules, "keyring", None)
    code, out, err = kling(capsys, "keys", "--json", "--config", cfg)
    assert code == 0, err
    row = _rows(out)[("fal", "api_key")]
    assert row["set"] is False and "pip install 'kling-core[keyring]'" in row["error"]


def test_a_job_reports_the_missing_package(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, '[providers.fal]\nkey = "keyring:kling/fal"\n')
    monkeypatch.setitem(sys.modules, "keyring", None)
    code, _out, err = kling(capsys, "status", "fal", "job-1", "--config", cfg)
    assert code == 2
    assert "providers.fal.credentials.api_key" in err and "pip install 'kling-core[keyring]'" in err
