"""Declarative config: ``kling.toml`` or ``[tool.kling]`` in pyproject.toml, found from the
working directory up to the project root, layered over a user-level ``config.toml``; or
``--config PATH`` (``$KLING_CONFIG``) instead of the search.

Layers, lowest first: the user config (``$KLING_CONFIG_DIR/config.toml``, default the platform's
config folder: ``~/.config/kling/config.toml`` on Linux, ``~/Library/Application Support/kling/
config.toml`` on macOS), then the project config. A later layer overrides an earlier one key by
key (tables merge), except that a layer giving a provider's ``key`` (``credentials.key``)
replaces the lower layers' credentials of that provider. The project config is the nearest ``kling.toml`` or ``pyproject.toml`` with a
``[tool.kling]`` table, looking in the working directory and then each parent, and no higher
than the first folder holding ``.git`` (the project root), as ruff and pytest look. A
``kling.toml`` beside a ``pyproject.toml`` with ``[tool.kling]`` wins, and the table is reported
as shadowed.

With no config at all the default provider is the offline mock. Errors name the file, the key
and the reason. Keys are ``env:VAR`` references only; values never live in config files.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
from attrs import field

from kling_core.errors import ConfigError, Problem, ValidationError
from kling_core.serialization import structure, unstructure
from kling_core.settings import (
    CREDENTIAL_REF_HINT,
    MediaSettings,
    ProviderSettings,
    RequestDefaults,
    WebhookSettings,
    is_credential_ref,
)

CONFIG_FILE = "kling.toml"
USER_CONFIG_FILE = "config.toml"
APP_NAME = "kling"
Scope = Literal["user", "project", "explicit"]


class ConfigWarning(UserWarning):
    """A config file was found but is not read (a ``kling.toml`` beside it wins)."""


@attrs.frozen
class ConfigFile:
    """One file a config was read from: its path, the table in it, and its layer."""

    path: str
    table: str | None = None  # "tool.kling" in a pyproject.toml
    scope: Scope = "project"

    def __str__(self) -> str:
        return self.path + (f" [{self.table}]" if self.table else "")


# Fields of KlingConfig that say where it came from; not config keys.
_PROVENANCE = ("source", "files", "shadowed")


@attrs.frozen
class KlingConfig:
    default_provider: str = "mock"
    # Tried in order after default_provider, only when the one before certainly made no job
    # (kling_core.client.fallback). A --provider / provider= given explicitly replaces both.
    fallback_providers: tuple[str, ...] = ()
    defaults: RequestDefaults = field(factory=RequestDefaults)
    media: MediaSettings = field(factory=MediaSettings)
    providers: Mapping[str, ProviderSettings] = field(factory=dict)
    webhooks: WebhookSettings = field(factory=WebhookSettings)
    source: str | None = field(default=None, eq=False)  # where it was read from; not a config key
    # The files in effect, lowest layer first; and files found but not read (shadowed).
    files: tuple[ConfigFile, ...] = field(default=(), eq=False)
    shadowed: tuple[ConfigFile, ...] = field(default=(), eq=False)

    def provider_settings(self, name: str) -> ProviderSettings:
        return self.providers.get(name, ProviderSettings())


def config_from_document(doc: Mapping[str, Any], *, source: str | None = None) -> KlingConfig:
    """Structure a parsed config document (the shape ``schemas/config.schema.json`` describes)."""
    doc = dict(doc)
    oversized = _oversized_integers(doc)
    if oversized:
        raise ValidationError(oversized, subject="config")
    for name in _PROVENANCE:
        if name in doc:
            raise ValidationError.single(name, "unknown field", subject="config")
    doc = _expand_key_shorthand(doc)
    cfg: KlingConfig = structure(doc, KlingConfig, subject="config")
    return attrs.evolve(cfg, source=source)


def _expand_key_shorthand(doc: dict[str, Any]) -> dict[str, Any]:
    """``providers.NAME.key = "env:VAR"`` (or ``"keyring:SERVICE/NAME"``) is shorthand for
    ``credentials.key``: the provider's first credential (single-key providers)."""
    providers = doc.get("providers")
    if isinstance(providers, Mapping):
        expanded = {}
        for name, table in providers.items():
            if isinstance(table, Mapping) and "key" in table:
                table = dict(table)
                creds = dict(table.get("credentials") or {})
                if creds:
                    # `key` names the first credential, which the table may also name as
                    # `credentials.api_key`: which one is meant cannot be told, so refuse both.
                    given = ", ".join(f"credentials.{c}" for c in creds)
                    raise ValidationError.single(
                        f"providers.{name}.key",
                        f"given together with {given}: key is shorthand for the provider's first "
                        "credential; give either key or credentials entries, not both",
                        subject="config",
                    )
                key = table.pop("key")
                if not is_credential_ref(key):
                    raise ValidationError.single(f"providers.{name}.key", CREDENTIAL_REF_HINT, subject="config")
                creds["key"] = key
                table["credentials"] = creds
            expanded[name] = table
        doc = {**doc, "providers": expanded}
    return doc


def config_to_document(cfg: KlingConfig) -> dict[str, Any]:
    """The config as a document ``config_from_document`` reads back (without its source)."""
    doc: dict[str, Any] = unstructure(attrs.evolve(cfg, files=(), shadowed=()))
    for name in _PROVENANCE:
        doc.pop(name, None)
    return doc


MAX_CONFIG_BYTES = 1024 * 1024  # a config is a few lines; anything this large is the wrong file
# TOML integers are 64-bit; tomllib accepts longer ones, which no setting can use.
_TOML_INT = 2**63


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse a config file, refusing what is not TOML text with the file named (exit 2)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", file=str(path)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a config file", file=str(path))
    if b"\0" in raw:
        raise ConfigError("is a binary file (it holds NUL bytes), not TOML text", file=str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} on line {line})",
                          file=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None


def _oversized_integers(doc: Any, path: str = "") -> list[Problem]:
    """Integers past TOML's 64-bit range (no setting takes them; converting them would overflow)."""
    if isinstance(doc, Mapping):
        return [p for k, v in doc.items() for p in _oversized_integers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(doc, (list, tuple)):
        return [p for i, v in enumerate(doc) for p in _oversized_integers(v, f"{path}[{i}]")]
    if isinstance(doc, int) and not isinstance(doc, bool) and not -_TOML_INT <= doc < _TOML_INT:
        return [Problem(path, "integer out of range (TOML integers are 64-bit)")]
    return []


def user_config_dir() -> Path:
    """``$KLING_CONFIG_DIR``, else the platform's user config folder for kling."""
    env = os.environ.get("KLING_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_config_path(APP_NAME, appauthor=False, roaming=True)


def user_config_file() -> Path:
    """The user-level config file (it need not exist)."""
    return user_config_dir() / USER_CONFIG_FILE


def _has_tool_kling(pyproject: Path) -> bool:
    tool = _read_toml(pyproject).get("tool")
    return isinstance(tool, dict) and "kling" in tool


def find_project_config(cwd: Path | None = None) -> tuple[ConfigFile | None, tuple[ConfigFile, ...]]:
    """The nearest project config from ``cwd`` upwards, and what it shadows.

    Each folder from ``cwd`` up: its ``kling.toml``, else its ``pyproject.toml`` if that has a
    ``[tool.kling]`` table. The search ends at the first folder holding ``.git``.
    """
    start = (cwd or Path.cwd()).absolute()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        tool = pyproject.is_file() and _has_tool_kling(pyproject)
        if (folder / CONFIG_FILE).is_file():
            shadowed = (ConfigFile(str(pyproject), "tool.kling"),) if tool else ()
            return ConfigFile(str(folder / CONFIG_FILE)), shadowed
        if tool:
            return ConfigFile(str(pyproject), "tool.kling"), ()
        if (folder / ".git").exists():
            break
    return None, ()


def find_config(cwd: Path | None = None) -> tuple[Path, str | None] | None:
    """The project config in effect for ``cwd`` (``$KLING_CONFIG`` first): its path and table."""
    files, _shadowed = config_files(cwd=cwd, user=False)
    return (Path(files[0].path), files[0].table) if files else None


def config_files(path: str | os.PathLike[str] | None = None, *, cwd: Path | None = None,
                 user: bool = True) -> tuple[list[ConfigFile], tuple[ConfigFile, ...]]:
    """The files a config is read from, lowest layer first, and the files they shadow."""
    files: list[ConfigFile] = []
    if user:
        user_file = user_config_file()
        if user_file.is_file():
            files.append(ConfigFile(str(user_file), scope="user"))
    explicit = os.fspath(path) if path is not None else (os.environ.get("KLING_CONFIG") or None)
    if explicit is not None:
        table = "tool.kling" if Path(explicit).name == "pyproject.toml" else None
        files.append(ConfigFile(explicit, table, "explicit"))
        return files, ()
    found, shadowed = find_project_config(cwd)
    if found is not None:
        files.append(found)
    return files, shadowed


def load_config(path: str | os.PathLike[str] | None = None, *, cwd: Path | None = None, user: bool = True,
                warn: bool = True) -> KlingConfig:
    """Load and validate the config; no file at all gives the defaults (mock provider).

    ``path`` (or ``$KLING_CONFIG``) replaces the project search; the user config is layered
    under either unless ``user=False``. ``warn`` issues a :class:`ConfigWarning` for a shadowed
    ``[tool.kling]`` (the CLI prints its own warning instead).
    """
    files, shadowed = config_files(path, cwd=cwd, user=user)
    if warn:
        for message in shadow_warnings(files, shadowed):
            warnings.warn(message, ConfigWarning, stacklevel=2)
    if not files:
        return KlingConfig(shadowed=shadowed)
    docs = [_document(f) for f in files]  # each file is valid on its own: errors name it
    merged: dict[str, Any] = {}
    for doc in docs:
        merged = _merge(_without_replaced_credentials(merged, doc), doc)
    where = " + ".join(str(f) for f in files)
    cfg = _structure(merged, where)
    return attrs.evolve(cfg, files=tuple(files), shadowed=shadowed)


def shadow_warnings(files: list[ConfigFile] | tuple[ConfigFile, ...], shadowed: tuple[ConfigFile, ...]) -> list[str]:
    """One line per shadowed ``[tool.kling]``, naming the file that wins."""
    project = [f for f in files if f.scope != "user"]
    winner = project[-1].path if project else CONFIG_FILE
    return [f"{winner} shadows {s} in the same folder; that table is ignored (keep one of the two)" for s in shadowed]


def _document(file: ConfigFile) -> dict[str, Any]:
    """One file's config document (key shorthand expanded), validated on its own."""
    path = Path(file.path)
    data: Any = _read_toml(path)
    if file.table:
        tool = data.get("tool")
        data = tool.get("kling") if isinstance(tool, dict) else None
        if data is None:
            raise ConfigError("has no [tool.kling] table", file=str(path))
        if not isinstance(data, dict):
            raise ConfigError("[tool.kling] must be a table", file=str(path))
    _structure(data, str(file))
    return _expand_key_shorthand(dict(data))


def _without_replaced_credentials(low: dict[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    """``low`` without the credentials of each provider whose credentials ``high`` gives as
    ``key`` (the shorthand, expanded): ``key`` stands for the provider's first credential,
    whatever its name, so a lower ``credentials.api_key`` must not outrank it after merging."""
    high_providers = high.get("providers")
    low_providers = low.get("providers")
    if not isinstance(high_providers, Mapping) or not isinstance(low_providers, Mapping):
        return low
    providers = dict(low_providers)
    for name, table in high_providers.items():
        creds = table.get("credentials") if isinstance(table, Mapping) else None
        lower = providers.get(name)
        if isinstance(creds, Mapping) and "key" in creds and isinstance(lower, Mapping):
            providers[name] = {k: v for k, v in lower.items() if k != "credentials"}
    return {**low, "providers": providers}


def _merge(low: dict[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    """``high`` over ``low``: tables merge key by key, anything else is replaced."""
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _structure(data: Any, where: str) -> KlingConfig:
    try:
        return config_from_document(data, source=where)
    except ValidationError as exc:
        lines = [f"{where}: {p.path or '(top level)'}: {p.message}" for p in exc.problems]
        first = exc.problems[0]
        err = ConfigError(first.message, file=where, key=first.path)
        if len(lines) > 1:
            err.message = f"{len(lines)} problems in the config:\n" + "\n".join(f"  - {ln}" for ln in lines)
            err.args = (err.message,)
        raise err from None
