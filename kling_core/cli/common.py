"""Shared CLI state (config and plugins, loaded lazily) and error printing."""

from __future__ import annotations

import sys
from typing import ClassVar, NoReturn

import click

from kling_core.client import AsyncEditClient
from kling_core.config import KlingConfig, load_config, shadow_warnings
from kling_core.errors import KlingError
from kling_core.plugins import PluginHost


class State:
    """Loaded on first use, so `kling --help` works even with a broken config."""

    # The one plugin host of this process: built by `plugin_host()` before parsing (plugins may
    # add commands), then shared by every command and client.
    _process_host: ClassVar[PluginHost | None] = None

    @classmethod
    def plugin_host(cls, *, fresh: bool = False) -> PluginHost:
        if cls._process_host is None or fresh:
            cls._process_host = PluginHost()
        return cls._process_host

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._config: KlingConfig | None = None
        self._host: PluginHost | None = None

    @property
    def config(self) -> KlingConfig:
        if self._config is None:
            self._config = load_config(self.config_path, warn=False)
            for message in shadow_warnings(self._config.files, self._config.shadowed):
                click.echo(f"warning: {message}", err=True)
        return self._config

    @property
    def host(self) -> PluginHost:
        if self._host is None:
            self._host = State.plugin_host()
            # Providers the config declares; read when a command first asks for providers.
            self._host.declare(lambda: self.config)
            allow_warning = self._host.allow_list_warning()
            if allow_warning:
                click.echo(f"warning: {allow_warning}", err=True)
            for failure in self._host.failures:
                click.echo(f"warning: {failure}", err=True)
        return self._host


    def client(self, provider: str | None) -> AsyncEditClient:
        """The client every job command uses: this invocation's config and plugins."""
        return AsyncEditClient(provider=provider, config=self.config, host=self.host)


def fail(exc: KlingError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)
