"""Declarative config: ``kling.toml``, ``[tool.kling]`` in pyproject.toml, or ``--config PATH``.

With no config at all the default provider is the offline mock. Errors name the file, the key
and the reason. Keys are ``env:VAR`` references only; values never live in config files.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import field

from kling_core.errors import ConfigError, Problem, ValidationError
from kling_core.serialization import structure, unstructure
from kling_core.settings import ENV_REF_RE, MediaSettings, ProviderSettings, RequestDefaults

CONFIG_FILE = "kling.toml"


@attrs.frozen
class KlingConfig:
    default_provider: str = "mock"
    defaults: RequestDefaults = field(factory=RequestDefaults)
    media: MediaSettings = field(factory=MediaSettings)
    providers: Mapping[str, ProviderSettings] = field(factory=dict)
    source: str | None = field(default=None, eq=False)  # where it was read from; not a config key

    def provider_settings(self, name: str) -> ProviderSettings:
        return self.providers.get(name, ProviderSettings())


def config_from_document(doc: Mapping[str, Any], *, source: str | None = None) -> KlingConfig:
    """Structure a parsed config document (the shape ``schemas/config.schema.json`` describes)."""
    doc = dict(doc)
    oversized = _oversized_integers(doc)
    if oversized:
        raise ValidationError(oversized, subject="config")
    if "source" in doc:
        raise ValidationError.single("source", "unknown field", subject="config")
    providers = doc.get("providers")
    if isinstance(providers, Mapping):
        expanded = {}
        for name, table in providers.items():
            if isinstance(table, Mapping) and "key" in table:
                # `key = "env:VAR"` is shorthand for `credentials.key` (single-key providers).
                table = dict(table)
                creds = dict(table.get("credentials") or {})
                if "key" in creds:
                    raise ValidationError.single(
                        f"providers.{name}.key", "given twice (also as credentials.key)", subject="config"
                    )
                key = table.pop("key")
                if not isinstance(key, str) or not ENV_REF_RE.match(key):
                    raise ValidationError.single(
                        f"providers.{name}.key",
                        "must be env:VARIABLE (keys are read from the environment; secrets do not belong in config files)",
                        subject="config",
                    )
                creds["key"] = key
                table["credentials"] = creds
            expanded[name] = table
        doc["providers"] = expanded
    cfg: KlingConfig = structure(doc, KlingConfig, subject="config")
    return attrs.evolve(cfg, source=source)


def config_to_document(cfg: KlingConfig) -> dict[str, Any]:
    """The config as a document ``config_from_document`` reads back (without its source)."""
    doc: dict[str, Any] = unstructure(cfg)
    doc.pop("source", None)
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


def find_config(cwd: Path | None = None) -> tuple[Path, str | None] | None:
    """The config in effect for ``cwd``: kling.toml, else [tool.kling] in pyproject.toml."""
    base = cwd or Path.cwd()
    env = os.environ.get("KLING_CONFIG")
    if env:
        return Path(env), None
    if (base / CONFIG_FILE).is_file():
        return base / CONFIG_FILE, None
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        data = _read_toml(pyproject)
        if isinstance(data.get("tool"), dict) and "kling" in data["tool"]:
            return pyproject, "tool.kling"
    return None


def load_config(path: str | Path | None = None, *, cwd: Path | None = None) -> KlingConfig:
    """Load and validate the config; no file at all gives the defaults (mock provider)."""
    if path is not None:
        found: tuple[Path, str | None] | None = (Path(path), None)
        if Path(path).name == "pyproject.toml":
            found = (Path(path), "tool.kling")
    else:
        found = find_config(cwd)
    if found is None:
        return KlingConfig()
    file, table = found
    data: Any = _read_toml(file)
    if table:
        tool = data.get("tool")
        data = tool.get("kling") if isinstance(tool, dict) else None
        if data is None:
            raise ConfigError("has no [tool.kling] table", file=str(file))
        if not isinstance(data, dict):
            raise ConfigError("[tool.kling] must be a table", file=str(file))
    where = f"{file}" + (f" [{table}]" if table else "")
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
