"""Shared CLI state (config and plugins, loaded lazily) and error printing.

Imports here are deferred to first use: every command imports this module, and ``kling
--help`` should not pay for the client, the config reader or the plugin host.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, NoReturn, ParamSpec, TypeVar

import click

from kling_core.errors import Problem, ValidationError

if TYPE_CHECKING:
    from kling_core.client import AsyncEditClient
    from kling_core.config import KlingConfig
    from kling_core.errors import KlingError
    from kling_core.plugins import PluginHost

P = ParamSpec("P")
T = TypeVar("T")


class Problems(list[Problem]):
    """The problems of a command's options, gathered so every bad one is named at once."""

    def take(self, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``parse(...)``; None, with its problems kept, when it raises a ValidationError."""
        try:
            return parse(*args, **kwargs)
        except ValidationError as exc:
            self.extend(exc.problems)
            return None


class State:
    """Loaded on first use, so `kling --help` works even with a broken config."""

    # The one plugin host of this invocation: built on first use (listing the commands, a
    # command that needs providers), then shared by every command and client. It imports only
    # the plugins asked for (see kling_core.plugins).
    _process_host: ClassVar[PluginHost | None] = None
    # True when this invocation is the whole process (`kling ...`), not a call from Python.
    whole_process: ClassVar[bool] = False

    @classmethod
    def settled(cls) -> None:
        """The command's long-lived objects exist (e.g. a job was submitted and is awaited).

        In a process that ends with the command they live until the exit: leave them out of
        every later garbage collection, the one at exit included (some 30 ms of a mock edit).
        What the command makes after this is still collected, so a file object in a cycle is
        still flushed at exit. Resources made before must be closed explicitly (the client's
        job log is: see :meth:`client`). Called from Python (tests), it does nothing.
        """
        if cls.whole_process:
            gc.freeze()

    @classmethod
    def plugin_host(cls) -> PluginHost:
        if cls._process_host is None:
            from kling_core.plugins import PluginHost

            cls._process_host = PluginHost()
        return cls._process_host

    @classmethod
    def forget_plugin_host(cls) -> None:
        """A new invocation (``main`` called again in one process) builds its own host."""
        cls._process_host = None

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._config: KlingConfig | None = None
        self._host: PluginHost | None = None

    @property
    def config(self) -> KlingConfig:
        if self._config is None:
            from kling_core.config import load_config, shadow_warnings

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
            for failure in self._host.failures_so_far:
                click.echo(f"warning: {failure}", err=True)
            # Plugins load when first needed: warn of each later failure as it happens.
            self._host.on_failure = lambda failure: click.echo(f"warning: {failure}", err=True)
        return self._host

    def client(self, provider: str | None) -> AsyncEditClient:
        """The client every job command uses: this invocation's config and plugins."""
        from kling_core.client import AsyncEditClient

        client = AsyncEditClient(provider=provider, config=self.config, host=self.host)
        ctx = click.get_current_context(silent=True)
        if client.journal is not None and ctx is not None:
            # Closed when the command ends (its WAL checkpointed and removed), not left to a
            # garbage collection at exit that `settled` may have ruled out.
            ctx.call_on_close(client.journal.close)
        return client


def error_text(exc: KlingError) -> str:
    """``exc``'s message for people, with the wait a rate limit asks for when the text does not
    already say it (a script reads ``retry_after`` from the ``--json`` error document instead)."""
    from kling_core.errors import seconds_text

    text = str(exc)
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, (int, float)) and not _says_seconds(text, wait):
        text += f"; retry after {seconds_text(wait)}"
    return text


def _says_seconds(text: str, seconds: float) -> bool:
    import re

    shown = {f"{seconds:.0f}", f"{seconds:g}"}
    return any(re.search(rf"(?<![\d.]){re.escape(n)}\s*s(?:ec(?:ond)?s?)?\b", text) for n in shown)


def fail(exc: KlingError) -> NoReturn:
    click.echo(f"error: {error_text(exc)}", err=True)
    sys.exit(exc.exit_code)
