"""A MissingKeyError is built with its final text: the variable to set, or the keyring
reference that holds nothing; ``resolve_credential`` raises it as built."""

from __future__ import annotations

import pytest

from kling_core import settings
from kling_core.errors import MissingKeyError
from kling_core.settings import CredentialSpec, ProviderSettings, resolve_credential

SPEC = CredentialSpec(name="api_key", env="FAL_KEY")
KEYRING_TEXT = "provider 'fal' needs a key: nothing stored in the system keyring at keyring:kling/other"


def test_the_error_is_built_with_its_final_text() -> None:
    by_env = MissingKeyError("fal", "FAL_KEY")
    by_keyring = MissingKeyError("fal", "keyring:kling/other")
    assert str(by_env) == "provider 'fal' needs a key: set the environment variable FAL_KEY"
    assert str(by_keyring) == KEYRING_TEXT
    for err in (by_env, by_keyring):
        assert err.args == (err.message,) and err.reason == err.message and err.exit_code == 2


def test_resolve_credential_raises_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "keyring_reader", lambda service, name: None)
    with pytest.raises(MissingKeyError) as info:
        resolve_credential("fal", SPEC, ProviderSettings(credentials={"api_key": "keyring:kling/other"}), {})
    assert str(info.value) == KEYRING_TEXT and info.value.variable == "keyring:kling/other"
    with pytest.raises(MissingKeyError) as info:
        resolve_credential("fal", SPEC, ProviderSettings(), {})
    assert str(info.value) == "provider 'fal' needs a key: set the environment variable FAL_KEY"
