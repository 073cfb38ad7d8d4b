"""Read-only commands: providers, plugins, schema, config."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import click
import httpx

from kling_core.cli.common import State
from kling_core.cli.completion_cmd import complete_schemas
from kling_core.cli.job_cmd import json_errors
from kling_core.config import config_to_document, user_config_file
from kling_core.errors import ConfigError, ValidationError
from kling_core.http.redact import redact_url
from kling_core.media.locate import require_ffmpeg
from kling_core.plugins import uses_of
from kling_core.provider import Provider, ProviderContext
from kling_core.schema_store import bundled_schema, load_schema, schema_names
from kling_core.serialization import unstructure
from kling_core.settings import credential_variable

pass_state = click.make_pass_decorator(State)


def provider_info(cls: type[Provider], state: State) -> dict[str, Any]:
    settings = state.config.provider_settings(cls.name)
    caps = unstructure(cls.capabilities)
    plugin = state.host.owner_of(cls.name)
    dist, version = state.host.distribution_of(plugin) if plugin else (None, None)
    return {
        "name": cls.name,
        "title": cls.title,
        "plugin": {"name": plugin, "distribution": dist, "version": version},
        "http": cls.is_http,
        "uses": uses_of(cls),  # a provider declared in config: the provider whose wire format it speaks
        "models": caps.pop("models"),
        "capabilities": caps,
        "keys": cls.key_status(settings, os.environ),
        "default": cls.name == state.config.default_provider,
        # Its place among the config's fallback hosts (0: the default; None: not listed).
        "fallback_position": _fallback_position(cls.name, state),
    }


def _fallback_position(name: str, state: State) -> int | None:
    chain = (state.config.default_provider, *state.config.fallback_providers)
    return chain.index(name) if name in chain else None


def _price_text(price: dict[str, Any]) -> str:
    rate = f"${price['usd_per_second']:g}/s" if price.get("usd_per_second") is not None else f"${price['usd_per_run']:g}/job"
    mode = f" {price['edit_mode']}" if price.get("edit_mode") else ""
    return f"{price['model']} {price['quality']}{mode} {rate}"



@click.command("providers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (or the error as JSON).")
@pass_state
@json_errors
def providers(state: State, as_json: bool) -> None:
    """List providers, their models and capabilities, the plugin (and its version) each comes
    from, and whether their keys are set."""
    host = state.host
    infos = [provider_info(cls, state) for name, cls in host.providers.items() if name == cls.name]
    if as_json:
        doc = {"providers": infos, "plugin_errors": [f.to_document() for f in host.failures]}
        click.echo(json.dumps(doc, indent=2))
        return
    for info in infos:
        mark = " (default)" if info["default"] else ""
        keys = ", ".join(f"{var} {'set' if ok else 'NOT set'}" for var, ok in info["keys"].items()) or "no key needed"
        uses = f" (declared in config; uses {info['uses']})" if info["uses"] else ""
        click.echo(f"{info['name']}{mark}: {info['title']}{uses}{_from(info['plugin'])}")
        click.echo(f"  keys: {keys}")
        caps = info["capabilities"]
        flags = [k for k in ("can_cancel", "accepts_webhook", "accepts_local_files", "supports_dry_run") if caps.get(k)]
        click.echo(f"  capabilities: {', '.join(flags) or 'none beyond editing'}")
        prices = caps.get("prices") or []
        if prices:
            dates = sorted({p["as_of"] for p in prices})
            click.echo(f"  prices: {'; '.join(_price_text(p) for p in prices)} (as of {', '.join(dates)}; "
                       "sources in --json)")
        else:
            click.echo("  prices: none published that we know of")
        for m in info["models"]:
            click.echo(
                f"  - {m['model']}: modes {'/'.join(m['edit_modes'])}, quality {'/'.join(m['qualities'])}, "
                f"≤{m['max_references']} references, video {m['video']['min_duration']:g}–{m['video']['max_duration']:g} s"
            )


def _from(plugin: dict[str, Any]) -> str:
    if not plugin.get("distribution"):
        return ""
    version = f" {plugin['version']}" if plugin.get("version") else ""
    return f" (from {plugin['distribution']}{version})"


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"plugins": [...], "plugin_errors": [...]} as JSON (or the error as JSON).')
@pass_state
@json_errors
def plugins(state: State, as_json: bool) -> None:
    """List loaded plugins, the distribution and version each comes from and the hooks it
    implements; report plugins that failed to load (and exit 1 if any did)."""
    host = state.host
    rows: list[dict[str, Any]] = []
    for n in host.plugin_names():
        dist, version = host.distribution_of(n)
        rows.append({"name": n, "distribution": dist, "version": version, "hooks": host.hooks_of(n)})
    fails = [f.to_document() for f in host.failures]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "plugin_errors": fails}, indent=2))
    else:
        for row in rows:
            click.echo(f"{row['name']}{_from(row)}: {', '.join(row['hooks'])}")
        for f in host.failures:
            click.echo(f"FAILED {f}")
    if fails:
        raise SystemExit(1)


def schema_text(name: str) -> str:
    """The schema ``name``, self-contained: schemas it refers to are bundled under ``$defs``."""
    try:
        load_schema(name)
    except KeyError:
        raise ConfigError(f"unknown schema {name!r}; known: {', '.join(schema_names())}", key="NAME") from None
    return json.dumps(bundled_schema(name), indent=2) + "\n"


@click.command("schema")
@click.argument("name", required=False, shell_complete=complete_schemas)
def schema(name: str | None) -> None:
    """Print a JSON Schema: edit-request, job-status, edit-result, config, cassette, providers/…

    The schema printed is self-contained: every schema it refers to is bundled under its
    `$defs` and every `$ref` is a local `#/...` pointer, so a validator needs no network.
    Without NAME, list the schemas.
    """
    if name is None:
        click.echo("\n".join(schema_names()))
        return
    click.echo(schema_text(name), nl=False)


@click.group("config")
def config() -> None:
    """Check or show the config in effect."""


@config.command("check")
@pass_state
def config_check(state: State) -> None:
    """Validate the config file, provider names and options, and that ffmpeg runs."""
    cfg = state.config
    names = state.host.providers
    where = cfg.source or "(no config file: defaults)"
    problems = []
    if cfg.default_provider not in names:
        problems.append(f"default_provider: unknown provider {cfg.default_provider!r} (installed: {', '.join(names)})")
    for name in cfg.providers:
        if name not in names:
            problems.append(f"providers.{name}: unknown provider (installed: {', '.join(names)})")
    for i, name in enumerate(cfg.fallback_providers):
        if name not in names:
            problems.append(f"fallback_providers[{i}]: unknown provider {name!r} (installed: {', '.join(names)})")
        elif name == cfg.default_provider or name in cfg.fallback_providers[:i]:
            problems.append(f"fallback_providers[{i}]: {name!r} is listed twice (with default_provider)")
    for name, settings in cfg.providers.items():
        if name not in names:
            continue
        cls = names[name]
        # Build the provider with stand-in credentials: constructors check their options and
        # make no network call, so this validates provider-specific settings offline.
        stand_in = {credential_variable(spec, settings, first=i == 0): "config-check"
                    for i, spec in enumerate(cls.credentials)}
        try:
            cls(ProviderContext(name=cls.name, settings=settings, media=cfg.media, environ=stand_in))
        except (ConfigError, ValidationError) as exc:
            problems.append(str(exc) if f"providers.{name}" in str(exc) else f"providers.{name}: {exc}")
    ffmpeg = None
    try:
        ffmpeg = require_ffmpeg(cfg.media)  # runs `ffmpeg -version`, with a timeout
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n  - ".join(["problems:", *problems]), file=where)
    fallback = f", then {', '.join(cfg.fallback_providers)}" if cfg.fallback_providers else ""
    click.echo(f"ok: {where}; default provider {cfg.default_provider!r}{fallback}; ffmpeg {ffmpeg}")


@config.command("show")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"files": [...], "shadowed": [...], "user_config": PATH, "config": {...}} as JSON.')
@pass_state
@json_errors
def config_show(state: State, as_json: bool) -> None:
    """Print which config files are in effect, and the config they make (keys appear only as
    references: env:VAR or keyring:SERVICE/NAME, never their values; token-like URL query
    values are masked).

    Files layer lowest first: the user config, then the project's (the nearest kling.toml or
    [tool.kling] in pyproject.toml from here up to the project root), or --config.
    """
    cfg = state.config
    doc = _redacted_urls(config_to_document(cfg))
    files = [{"path": f.path, "table": f.table, "scope": f.scope} for f in cfg.files]
    shadowed = [{"path": f.path, "table": f.table} for f in cfg.shadowed]
    if as_json:
        click.echo(json.dumps({"files": files, "shadowed": shadowed, "user_config": str(user_config_file()),
                               "config": doc}, indent=2))
        return
    if cfg.files:
        click.echo("files in effect (later ones override earlier ones):")
        for f in cfg.files:
            click.echo(f"  {f.scope + ':':<10}{f}")
    else:
        click.echo(f"files in effect: none (defaults; the user config would be {user_config_file()})")
    for f in cfg.shadowed:
        click.echo(f"shadowed (not read): {f}")
    click.echo("config:")
    click.echo(json.dumps(doc, indent=2))


def _redacted_urls(doc: Any) -> Any:
    """``doc`` with every http(s) URL in it (base_url, public_url, URLs among provider options)
    redacted: a token in its query (``?key=...``) is masked, never printed."""
    if isinstance(doc, dict):
        return {k: _redacted_urls(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_redacted_urls(v) for v in doc]
    if isinstance(doc, str) and doc[:8].lower().startswith(("http://", "https://")):
        try:
            return redact_url(doc)
        except (httpx.InvalidURL, ValueError):
            # A URL httpx cannot parse (a bad port, say): its query and any user:password@
            # are hidden whole.
            head = re.split(r"[?#]", doc, maxsplit=1)[0]
            return re.sub(r"^(https?://)[^/]*@", r"\1", head, flags=re.IGNORECASE) + ("?***" if head != doc else "")
    return doc


commands = [providers, plugins, schema, config]
