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
from typing import Any, Literal

import attrs

from kling_core.errors import ConfigError, Problem, ValidationError
from kling_core.serialization import structure

RENDER_MODES: tuple[str, ...] = ("full", "fast", "sample")
MAX_SECONDS = 3600.0


def _failure_name(_instance: object, _attribute: object, value: str | None) -> None:
    from kling_core.emulator.failures import unknown_failure

    why = None if value is None else unknown_failure(value, None)
    if why is not None:
        raise ValueError(why)


def _keys(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    if not all(isinstance(k, str) and k.strip() for k in value):
        raise ValueError("must be a list of non-empty strings")


def _seconds(_instance: object, _attribute: object, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
        raise ValueError(f"expected seconds from 0 to {MAX_SECONDS:g}, got {value!r}")


def _folder(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None and not value.strip():
        raise ValueError("must be a folder path")


@attrs.frozen
class HostSettings:
    """Settings of one emulated host."""

    # a scripted failure (the mock's names, or one of the host's own outcomes) for every job of this host
    fail: str | None = attrs.field(default=None, validator=_failure_name)
    keys: tuple[str, ...] = attrs.field(default=(), validator=_keys)  # accepted credentials; empty: any


@attrs.frozen
class SettingsFile:
    """What a settings file (``--settings``) may hold; an unset key keeps the default of
    :class:`EmulatorSettings`."""

    render: Literal["full", "fast", "sample"] | None = None
    queue_seconds: float | None = attrs.field(default=None, validator=_seconds)
    run_seconds: float | None = attrs.field(default=None, validator=_seconds)
    retry_after: float | None = attrs.field(default=None, validator=_seconds)
    media_root: str | None = attrs.field(default=None, validator=_folder)
    hosts: Mapping[str, HostSettings] = attrs.field(factory=dict)


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


def check_failure(name: str, key: str, host: str | None = None) -> str:
    """``name`` when ``host`` (None: any host) can script it; else a ConfigError naming ``key``."""
    from kling_core.emulator.failures import unknown_failure

    why = unknown_failure(name, host)
    if why is not None:
        raise ConfigError(why, key=key)
    return name


def unknown_host(name: str) -> str | None:
    """Why ``name`` is not a host the emulator serves, or None when it is (a typo would
    otherwise script nothing, silently)."""
    from kling_core.emulator.hosts import HOSTS

    if name in HOSTS:
        return None
    return f"{name!r} is not a host the emulator knows (emulated: {', '.join(HOSTS)})"


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    """The settings problems as one ConfigError naming the file and the field (or listing each)."""
    if len(exc.problems) == 1:
        first = exc.problems[0]
        return ConfigError(first.message, file=source, key=first.path or None)
    listed = "\n".join(f"  - {p.path or '(top level)'}: {p.message}" for p in exc.problems)
    return ConfigError(f"{len(exc.problems)} problems in the emulator settings:\n{listed}", file=source)


def settings_from_document(doc: Mapping[str, Any], *, source: str = "settings") -> EmulatorSettings:
    """Settings from a parsed TOML document; unknown keys and bad values are refused, each named."""
    from kling_core.emulator.failures import unknown_failure

    # A host name is checked on the document itself, so a typo is listed with every other problem.
    tables = doc.get("hosts")
    problems = [Problem(f"hosts.{name}", why) for name in (tables if isinstance(tables, Mapping) else ())
                if (why := unknown_host(str(name))) is not None]
    try:
        parsed: SettingsFile = structure(doc, SettingsFile, subject="emulator settings")
    except ValidationError as exc:
        problems += exc.problems
    else:
        for name, table in parsed.hosts.items():  # a host's own outcomes are its alone
            if table.fail is not None and unknown_host(name) is None and (
                    why := unknown_failure(table.fail, name)) is not None:
                problems.append(Problem(f"hosts.{name}.fail", why))
    if problems:
        raise _config_error(ValidationError(problems, subject="emulator settings"), source)
    values: dict[str, Any] = {name: value for name in ("render", "queue_seconds", "run_seconds", "retry_after")
                              if (value := getattr(parsed, name)) is not None}
    if parsed.media_root is not None:
        values["media_root"] = Path(parsed.media_root).expanduser()
    return EmulatorSettings(host_settings=dict(parsed.hosts), **values)


def load_settings_file(path: str | Path) -> EmulatorSettings:
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None
    return settings_from_document(doc, source=str(file))
