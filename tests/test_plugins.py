"""The plugin host: entry points, failures reported by name, check_pending, allow-list."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from fake_provider import FakePlugin, FakeProvider

from kling_core import hookimpl
from kling_core.errors import ConfigError
from kling_core.plugins import PluginHost


class Misspelled:
    @hookimpl
    def kling_register_provider(self, register: Any) -> None:  # typo: the hook is ..._providers
        register(FakeProvider)


class Clash:
    @hookimpl
    def kling_register_providers(self, register: Any) -> None:
        register(type("Other", (FakeProvider,), {}))  # same name "fake", another class


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, *pairs: tuple[str, str]) -> None:
    eps = [importlib.metadata.EntryPoint(name=n, value=v, group="kling") for n, v in pairs]
    real = importlib.metadata.entry_points

    def entry_points(**kw: Any) -> Any:
        if kw.get("group") == "kling":
            return eps
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_first_party_providers_load_through_entry_points() -> None:
    host = PluginHost(environ={})
    assert "mock" in host.providers
    assert host.providers["mock"].name == "mock"


def test_a_plugin_that_fails_to_import_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, ("broken", "no_such_module_kling_xyz"), ("mock", "kling_core_plugins.mock"))
    host = PluginHost(environ={})
    assert [f.name for f in host.failures] == ["broken"]
    assert "no_such_module_kling_xyz" in host.failures[0].error
    assert "mock" in host.providers  # the others still work
    with pytest.raises(ConfigError, match="provider 'broken' is unavailable: plugin 'broken'"):
        host.provider_class("broken")


def test_a_misspelled_hook_fails_loudly_naming_plugin_and_hook() -> None:
    host = PluginHost(entrypoints=False, plugins=[("typo", Misspelled())])
    assert len(host.failures) == 1
    assert host.failures[0].name == "typo"
    assert "kling_register_provider" in host.failures[0].error
    assert "fake" not in host.providers
    with pytest.raises(ConfigError, match="kling_register_provider"):
        PluginHost(entrypoints=False, plugins=[("typo", Misspelled())], strict=True)


def test_pluggy_check_pending_passes_for_loaded_plugins() -> None:
    host = PluginHost(environ={})
    host.check_pending()


def test_allow_list_limits_what_loads() -> None:
    host = PluginHost(environ={"KLING_PLUGINS": "mock"})
    assert list(host.providers) == ["mock"]
    assert PluginHost(environ={"KLING_PLUGINS": ""}).providers == {}
    with pytest.raises(ConfigError, match="KLING_PLUGINS=mock limits what is loaded"):
        host.provider_class("fal")


def test_two_plugins_claiming_one_name_is_a_reported_conflict() -> None:
    host = PluginHost(entrypoints=False, plugins=[("a", FakePlugin()), ("b", Clash())])
    assert host.providers["fake"] is FakeProvider or host.providers["fake"].__name__ == "Other"
    assert any("already registered" in f.error for f in host.failures)


def test_unknown_provider_lists_the_installed_ones() -> None:
    host = PluginHost(entrypoints=False, plugins=[("a", FakePlugin())])
    with pytest.raises(ConfigError, match=r"unknown provider 'nope' \(installed: badgateway, bodyerror, fake, keyed, losing\)"):
        host.provider_class("nope")
