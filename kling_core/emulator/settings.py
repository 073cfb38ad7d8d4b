"""What an emulator run is told: hosts, render mode, timings, limits and per-host settings.

Settings come from ``kling emulate`` options, from an optional TOML file (``--settings``)
or, in tests, from keyword arguments of the ``kling_emulator`` fixture. A settings file::

    render = "fast"             # full | fast | sample
    queue_seconds = 0.5         # how long a job stays queued
    run_seconds = 1.0           # how long it runs at least
    media_root = "/srv/media"   # local files a request may name (file:// URLs or paths)

    [hosts.fal]
    fail = "content_policy"     # every fal job fails this way (a mock failure name)
    keys = ["test-key"]         # only these keys are accepted; default: any well-formed key
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from kling_core.errors import ConfigError

RENDER_MODES: tuple[str, ...] = ("full", "fast", "sample")
MAX_SECONDS = 3600.0


@attrs.frozen
class HostSettings:
    """Settings of one emulated host."""

    fail: str | None = None  # a scripted failure (the mock's names) for every job of this host
    keys: tuple[str, ...] = ()  # accepted credentials; empty: any well-formed credential


@attrs.frozen
class EmulatorSettings:
    hosts: tuple[str, ...] = ("fal",)
    render: str = "full"
    state_dir: Path | None = None  # jobs, uploads and renders kept here across restarts
    media_root: Path | None = None  # local files under it may be named as inputs
    queue_seconds: float = 0.5
    run_seconds: float = 0.5
    host_settings: Mapping[str, HostSettings] = attrs.field(factory=dict)
    max_json_bytes: int = 16 * 1024 * 1024  # a JSON request body (data: URIs included)
    max_upload_bytes: int = 512 * 1024 * 1024  # one stored file (single or multipart upload)
    max_renders: int = 2  # ffmpeg encodes at once (the machine has 2 cores)
    ffmpeg_timeout: float = 300.0
    download_timeout: float = 30.0  # fetching an input from a loopback URL
    retry_after: float = 5.0  # what a scripted rate limit asks the client to wait
    webhook_attempts: int = 5
    webhook_backoff: float = 0.5  # seconds before the 2nd delivery attempt, doubling
    tls: bool = False  # serve https with a self-signed certificate made for 127.0.0.1/localhost

    def host(self, name: str) -> HostSettings:
        return self.host_settings.get(name, HostSettings())


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_SECONDS:
        raise ConfigError(f"expected seconds from 0 to {MAX_SECONDS:g}, got {value!r}", key=key)
    return float(value)


def check_failure(name: str, key: str) -> str:
    from kling_core.emulator.failures import FAILURE_NAMES

    if name not in FAILURE_NAMES:
        raise ConfigError(f"{name!r} is not a scripted failure (known: {', '.join(FAILURE_NAMES)})", key=key)
    return name


def settings_from_document(doc: Mapping[str, Any], *, source: str = "settings") -> EmulatorSettings:
    """Settings from a parsed TOML document; unknown keys and bad values are refused."""
    known = {"render", "queue_seconds", "run_seconds", "media_root", "hosts", "retry_after"}
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", key=key, file=source)
        if key == "render":
            if value not in RENDER_MODES:
                raise ConfigError(f"must be one of {', '.join(RENDER_MODES)}", key=key, file=source)
            values["render"] = value
        elif key in ("queue_seconds", "run_seconds", "retry_after"):
            values[key] = _seconds(value, key)
        elif key == "media_root":
            if not isinstance(value, str) or not value:
                raise ConfigError("must be a folder path", key=key, file=source)
            values["media_root"] = Path(value).expanduser()
    hosts: dict[str, HostSettings] = {}
    raw_hosts = doc.get("hosts", {})
    if not isinstance(raw_hosts, Mapping):
        raise ConfigError("must be a table of hosts", key="hosts", file=source)
    for name, table in raw_hosts.items():
        if not isinstance(table, Mapping):
            raise ConfigError("must be a table", key=f"hosts.{name}", file=source)
        fail = table.get("fail")
        keys = table.get("keys", [])
        extra = set(table) - {"fail", "keys"}
        if extra:
            raise ConfigError(f"unknown key {sorted(extra)[0]!r} (known: fail, keys)", key=f"hosts.{name}", file=source)
        if fail is not None and not isinstance(fail, str):
            raise ConfigError("must be a failure name", key=f"hosts.{name}.fail", file=source)
        if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() for k in keys):
            raise ConfigError("must be a list of non-empty strings", key=f"hosts.{name}.keys", file=source)
        hosts[name] = HostSettings(fail=check_failure(fail, f"hosts.{name}.fail") if fail else None,
                                   keys=tuple(keys))
    values["host_settings"] = hosts
    return EmulatorSettings(**values)


def load_settings_file(path: str | Path) -> EmulatorSettings:
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None
    return settings_from_document(doc, source=str(file))
