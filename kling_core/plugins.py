"""The plugin host: finds ``kling`` entry points and imports each plugin when it is needed.

First-party providers register through the same entry-point group as third-party ones.

Plugins load lazily, so a command pays only for the plugins it uses:

- a provider asked for by name loads the plugin whose entry point has that name (the
  convention: a plugin's entry-point name is its provider's name); a name no entry point has,
  or one its plugin does not register, loads every plugin before it is called unknown;
- listings (:attr:`PluginHost.providers`, :meth:`PluginHost.plugin_names`,
  :attr:`PluginHost.failures`) load every plugin;
- plugins that must be present in every command, because they add commands
  (``kling_register_commands``), observe every job (``kling_job_event``) or offer uploaders
  (``kling_media_uploader``), also list their entry point in the ``kling.hooks`` group (same
  name and value): those load whenever a host is built, and ``kling --help`` loads only them.

A plugin that fails to import, or implements a hook that does not exist, is reported by name
and left out; commands that do not need it keep working. ``KLING_PLUGINS`` (a comma list of
entry-point names; empty for none) narrows what is loaded, for CI and for recovering from a
broken plugin.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from kling_core import hookspecs
from kling_core.errors import ConfigError

if TYPE_CHECKING:
    from kling_core.config import KlingConfig
    from kling_core.provider import Provider

ENTRY_POINT_GROUP = "kling"
# Plugins loaded by every host (before any command runs): those that add commands, observe
# jobs or offer uploaders. Same entry-point name and value as in ENTRY_POINT_GROUP.
HOOKS_GROUP = "kling.hooks"


@attrs.frozen
class PluginFailure:
    name: str
    distribution: str | None
    error: str
    version: str | None = None

    def to_document(self) -> dict[str, Any]:
        """The one shape `kling plugins --json` and `kling providers --json` report under ``plugin_errors``."""
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "error": self.error, "message": str(self)}

    def __str__(self) -> str:
        version = f" {self.version}" if self.distribution and self.version else ""
        dist = f" (from {self.distribution}{version})" if self.distribution else ""
        return f"plugin {self.name!r}{dist} failed to load: {self.error}"


def _allow_list(environ: Any) -> set[str] | None:
    raw = environ.get("KLING_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=group))


class PluginHost:
    """One plugin manager plus what it learned while loading."""

    def __init__(
        self,
        *,
        entrypoints: bool = True,
        plugins: Iterable[tuple[str, object]] = (),
        environ: Any = None,
        strict: bool = False,
    ) -> None:
        self.pm = pluggy.PluginManager("kling")
        self.pm.add_hookspecs(hookspecs)
        self._failures: list[PluginFailure] = []
        # Told of each failure as it happens (the CLI warns on stderr): plugins load lazily, so
        # a failure can come at any time, e.g. when a listing loads every plugin.
        self.on_failure: Callable[[PluginFailure], None] | None = None
        # Plugin name -> (distribution, version), for plugins loaded from an entry point (read on
        # first use: see distribution_of).
        self.distributions: dict[str, tuple[str, str | None]] = {}
        # Names in KLING_PLUGINS that no installed entry point has (reported as a warning).
        self.unknown_allowed: list[str] = []
        self.strict = strict
        env = os.environ if environ is None else environ
        self.allow = _allow_list(env)
        # Entry points found but not imported yet, by plugin name (KLING_PLUGINS applied), and
        # those imported.
        self._pending: dict[str, importlib.metadata.EntryPoint] = {}
        self._loaded_from: dict[str, importlib.metadata.EntryPoint] = {}
        # Hook name -> plugins it was called on by call_once.
        self._called: dict[str, list[object]] = {}
        self._providers: dict[str, type[Provider]] | None = None
        self._owners: dict[str, str] = {}
        # Providers declared in config (`[providers.NAME] uses = "BASE"`): the config (or how to
        # load it, so commands that list no providers never read it) and, once built, all classes.
        self._declared_from: KlingConfig | Callable[[], KlingConfig] | None = None
        self._all: dict[str, type[Provider]] | None = None
        if entrypoints:
            self._find_entrypoints()
        for name, plugin in plugins:
            self.register(plugin, name)

    # -- loading ----------------------------------------------------------------------
    def _find_entrypoints(self) -> None:
        """Note every entry point (no import), then import the ``kling.hooks`` ones."""
        providers, hooks = _entry_points(ENTRY_POINT_GROUP), _entry_points(HOOKS_GROUP)
        if self.allow is not None:
            installed = {ep.name for ep in (*providers, *hooks)}
            self.unknown_allowed = sorted(self.allow - installed)
        for ep in (*hooks, *providers):  # a plugin in both groups: its kling.hooks entry
            if (self.allow is None or ep.name in self.allow) and ep.name not in self._pending:
                self._pending[ep.name] = ep
        for ep in hooks:
            self.load(ep.name)

    def load(self, name: str) -> bool:
        """Import the plugin of entry point ``name`` if it is not loaded yet; False if no entry
        point (allowed by KLING_PLUGINS) has that name or it was loaded before."""
        ep = self._pending.pop(name, None)
        if ep is None:
            return False
        if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
            return False
        self._loaded_from[ep.name] = ep  # its distribution is read when asked for (parsing metadata costs)
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not take the CLI down
            self._fail(ep.name, None, f"{type(exc).__name__}: {exc}")
            return True
        self.register(plugin, ep.name)
        return True

    def load_all(self) -> None:
        """Import every plugin not loaded yet (listings; a provider no entry point is named after)."""
        for name in list(self._pending):
            self.load(name)

    def call_once(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on the plugins loaded since this was last called for it (e.g. each plugin
        adds its commands once, however often the command list is asked for)."""
        done = self._called.setdefault(hook, [])
        fresh = [p for p in self.pm.get_plugins() if not any(p is d for d in done)]
        if fresh:
            done.extend(fresh)
            caller = self.pm.subset_hook_caller(hook, remove_plugins=done[: len(done) - len(fresh)])
            caller(**kwargs)

    def allow_list_warning(self) -> str | None:
        """What is wrong with ``KLING_PLUGINS``, if it names plugins that are not installed."""
        if not self.unknown_allowed:
            return None
        installed = sorted({ep.name for group in (ENTRY_POINT_GROUP, HOOKS_GROUP) for ep in _entry_points(group)})
        names = ", ".join(repr(n) for n in self.unknown_allowed)
        return (f"KLING_PLUGINS names {names}, which no installed plugin provides "
                f"(installed: {', '.join(installed) or 'none'}); it is ignored")

    def distribution_of(self, name: str) -> tuple[str | None, str | None]:
        """(distribution, version) a plugin was loaded from; (None, None) if registered in code."""
        if name not in self.distributions:
            ep = self._loaded_from.get(name)
            if ep is None or ep.dist is None:
                return None, None
            self.distributions[name] = (ep.dist.name, ep.dist.version)
        dist, version = self.distributions[name]
        return dist, version

    def register(self, plugin: object, name: str, *, distribution: str | None = None,
                 version: str | None = None) -> None:
        try:
            self.pm.register(plugin, name=name)
            # check_pending() covers every plugin; a misspelled hook name is a plugin error.
            for hook_name, callers in _unknown_hooks(self.pm, plugin):
                self.pm.unregister(plugin)
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {hook_name!r} (did you mean one of: {callers})"
                )
        except pluggy.PluginValidationError as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._fail(name, distribution, str(exc), version=version)
        else:
            if distribution is not None:
                self.distributions[name] = (distribution, version)
        self._providers = None
        self._all = None

    def _fail(self, name: str, dist: str | None, error: str, *, version: str | None = None) -> None:
        if dist is None:
            dist, version = self.distribution_of(name)
        failure = PluginFailure(name, dist, error, version)
        if self.strict:
            raise ConfigError(str(failure))
        if failure not in self._failures:  # providers are collected again after each plugin loads
            self._failures.append(failure)
            if self.on_failure is not None:
                self.on_failure(failure)

    @property
    def failures(self) -> list[PluginFailure]:
        """Every plugin that failed to load (so every plugin is loaded first)."""
        self.load_all()
        if self._providers is None:
            self._collect_providers()  # a failing kling_register_providers is a failure too
        return self._failures

    @property
    def failures_so_far(self) -> list[PluginFailure]:
        """The failures of the plugins loaded so far (nothing is loaded to find more)."""
        return self._failures

    def check_pending(self) -> None:
        """pluggy's own check over every plugin (raises on unknown hooks)."""
        self.load_all()
        self.pm.check_pending()

    def plugin_names(self) -> list[str]:
        """Every plugin's name (every plugin is loaded first)."""
        self.load_all()
        return sorted(n for n, _ in self.pm.list_name_plugin() if n)

    def hooks_of(self, name: str) -> list[str]:
        self.load(name)
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            return []
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    # -- providers --------------------------------------------------------------------
    @property
    def providers(self) -> dict[str, type[Provider]]:
        """Every installed provider (every plugin is loaded first), then those the declared
        config adds (ConfigError if one is wrong)."""
        self.load_all()
        if self._providers is None:
            self._collect_providers()
        assert self._providers is not None
        if self._all is None:
            source = self._declared_from
            cfg = source() if callable(source) else source
            declared = declared_providers(self._providers, cfg) if cfg is not None else {}
            self._all = dict(sorted({**self._providers, **declared}.items()))
        return self._all

    def declare(self, config: KlingConfig | Callable[[], KlingConfig] | None) -> None:
        """Add the providers ``config`` declares (``[providers.NAME] uses = "BASE"``), replacing
        any declared before; a callable is called when providers are first asked for."""
        if config is not self._declared_from:
            self._declared_from = config
            self._all = None

    def _collect_providers(self) -> None:
        from kling_core.provider import Provider

        found: dict[str, type[Provider]] = {}
        owners: dict[str, str] = {}
        current: list[str] = [""]

        def register(provider_cls: type[Provider], aliases: Iterable[str] = ()) -> None:
            if not (isinstance(provider_cls, type) and issubclass(provider_cls, Provider)):
                raise TypeError(f"{provider_cls!r} is not a kling_core.provider.Provider subclass")
            for name in (provider_cls.name, *aliases):
                if name in found and found[name] is not provider_cls:
                    self._fail(
                        current[0],
                        None,
                        f"provider name {name!r} is already registered by plugin {owners[name]!r}",
                    )
                    continue
                found[name] = provider_cls
                owners[name] = current[0]

        for plugin_name, plugin in self.pm.list_name_plugin():
            impl = getattr(plugin, "kling_register_providers", None)
            if impl is None:
                continue
            current[0] = plugin_name
            try:
                impl(register=register)
            except Exception as exc:
                self._fail(plugin_name, None, f"kling_register_providers raised {type(exc).__name__}: {exc}")
        self._providers = dict(sorted(found.items()))
        self._owners = owners

    def owner_of(self, provider: str) -> str | None:
        """The plugin that registered a provider name (for a declared one: its base's)."""
        cls = self._installed(provider) or self.providers.get(provider)
        base = base_provider(cls) if cls is not None else None
        return self._owners.get(base or provider)

    def _installed(self, name: str) -> type[Provider] | None:
        """An installed provider by name, loading no more plugins than needed: the ones loaded,
        then the plugin whose entry point has that name. None: ask :attr:`providers`."""
        if self._providers is None:
            self._collect_providers()
        assert self._providers is not None
        if name not in self._providers and self.load(name):
            self._collect_providers()
        return self._providers.get(name)

    def _declares_any(self) -> bool:
        """Does the config declare providers? Then every look-up checks them all (a wrong
        ``uses`` is refused whichever provider is asked for), which needs every plugin."""
        source = self._declared_from
        if source is None:
            return False
        cfg = source() if callable(source) else source
        return any(settings.uses is not None for settings in cfg.providers.values())

    def provider_class(self, name: str) -> type[Provider]:
        """A provider by name: installed (loading only its plugin where the entry point is named
        after it) or declared in config; ConfigError naming the installed ones if unknown."""
        if not self._declares_any():
            found = self._installed(name)
            if found is not None:
                return found
        try:
            return self.providers[name]
        except KeyError:
            pass
        for failure in self.failures:
            if failure.name == name:
                raise ConfigError(f"provider {name!r} is unavailable: {failure}", key="provider")
        known = ", ".join(self.providers) or "none"
        hint = ""
        if self.allow is not None:
            hint = f"; KLING_PLUGINS={','.join(sorted(self.allow))} limits what is loaded"
        raise ConfigError(f"unknown provider {name!r} (installed: {known}){hint}", key="provider")

    def uploader(self, provider: str) -> Any:
        return self.pm.hook.kling_media_uploader(provider=provider)

    def job_event(self, provider: str, job_id: str, state: str, status: object) -> None:
        self.pm.hook.kling_job_event(provider=provider, job_id=job_id, state=state, status=status)


def uses_of(cls: type[Provider]) -> str | None:
    """The provider a config-declared provider class uses (None for an installed one)."""
    value = cls.__dict__.get("uses")
    return value if isinstance(value, str) else None


def base_provider(cls: type[Provider]) -> str | None:
    """The installed provider whose wire format a config-declared provider class speaks."""
    value = cls.__dict__.get("base_provider")
    return value if isinstance(value, str) else None


def declared_providers(installed: Mapping[str, type[Provider]], config: KlingConfig) -> dict[str, type[Provider]]:
    """A class per ``[providers.NAME] uses = "BASE"``: BASE's class under the name NAME.

    BASE is an installed provider or another declared one (chains resolve; a cycle is refused).
    Each class is a subclass made here with ``name = NAME`` and the base's class data; its
    instances get NAME's settings. Errors are ConfigErrors naming ``providers.NAME.uses``.
    """
    uses = {name: s.uses for name, s in config.providers.items() if s.uses is not None}
    built: dict[str, type[Provider]] = {}

    def build(name: str, chain: tuple[str, ...]) -> type[Provider]:
        if name in built:
            return built[name]
        base_name = uses[name]
        key = f"providers.{name}.uses"
        if name in installed:
            raise ConfigError(f"{name!r} is an installed provider; declare the new provider under another name",
                              file=config.source, key=key)
        if base_name == name:
            raise ConfigError(f"provider {name!r} cannot use itself", file=config.source, key=key)
        if base_name in chain:
            cycle = " -> ".join((*chain[chain.index(base_name):], name, base_name))
            raise ConfigError(f"providers use each other in a cycle ({cycle})", file=config.source, key=key)
        if base_name in uses:
            base = build(base_name, (*chain, name))
        elif base_name in installed:
            base = installed[base_name]
        else:
            known = ", ".join(sorted({c.name for c in installed.values()})) or "none"
            raise ConfigError(f"unknown provider {base_name!r} (installed: {known})", file=config.source, key=key)
        root = base_provider(base) or base.name
        title = f"{base.title or root} ({name})"
        meta: Any = type(base)  # ABCMeta: the subclass keeps the base's metaclass
        cls: type[Provider] = meta(f"{base.__name__}_{_identifier(name)}", (base,), {
            "name": name, "title": title, "uses": base_name, "base_provider": root, "__module__": base.__module__,
            "__doc__": f"Provider {name!r}, declared in config: {base_name!r}'s wire format with its own settings.",
        })
        built[name] = cls
        return cls

    return {name: build(name, ()) for name in uses}


def _identifier(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[tuple[str, str]]:
    """Hook implementations of this plugin that match no spec (pluggy's check_pending rule)."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("kling_"))
    out = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not impl.opts.get("optionalhook"):
                    out.append((caller.name, ", ".join(known)))
    return out
