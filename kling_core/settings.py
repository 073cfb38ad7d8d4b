"""Settings objects built from ``kling.toml`` (see :mod:`kling_core.config`).

Credentials are stored as ``env:VAR`` references only; the value is read from the
environment when a provider is used, wrapped in :class:`Secret` so it never prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field

from kling_core.errors import MissingKeyError


class Secret:
    """A credential value that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # refuse to be pickled into caches or logs by accident
        raise TypeError("Secret values cannot be pickled")


@attrs.frozen
class PollSettings:
    """Backoff for status polling: ``initial`` seconds growing ×``factor`` to ``max``."""

    initial: float = 1.0
    factor: float = 1.5
    max: float = 20.0
    jitter: float = 0.25  # ± fraction of each delay
    deadline: float = 1800.0  # per job, seconds
    status_retries: int = 5  # transient failures tolerated per status/result GET
    max_retry_after: float = 120.0  # a longer Retry-After is treated as "stop retrying"


@attrs.frozen
class RequestDefaults:
    """Defaults layered under what a request names explicitly."""

    model: str | None = None
    quality: str | None = None
    keep_audio: bool | None = None
    edit_mode: str | None = None


@attrs.frozen
class ProviderSettings:
    credentials: Mapping[str, str] = field(factory=dict)  # name -> "env:VAR"
    base_url: str | None = None
    timeout: float = 60.0  # per HTTP request, seconds
    poll: PollSettings = field(factory=PollSettings)
    defaults: RequestDefaults = field(factory=RequestDefaults)
    options: Mapping[str, Any] = field(factory=dict)  # provider-specific, checked by the plugin


@attrs.frozen
class MediaSettings:
    ffmpeg: str | None = None  # path to a system ffmpeg; else $KLING_FFMPEG, else imageio-ffmpeg
    allow_private_urls: bool = False  # allow loopback/private/link-local URL fetches (tests)
    max_download_bytes: int = 2 * 1024**3
    download_timeout: float = 60.0
    ffmpeg_timeout: float = 300.0
    work_dir: str | None = None  # where rendered/ downloaded media is kept; default: a cache dir


@attrs.frozen
class CredentialSpec:
    """A credential a provider needs: its config name and default environment variable."""

    name: str
    env: str


def resolve_credential(provider: str, spec: CredentialSpec, settings: ProviderSettings,
                       environ: Mapping[str, str] | None = None) -> Secret:
    """Read the credential named by config (``env:VAR``) or its default variable."""
    env = os.environ if environ is None else environ
    ref = settings.credentials.get(spec.name, f"env:{spec.env}")
    variable = ref[4:] if ref.startswith("env:") else spec.env
    value = env.get(variable, "").strip()
    if not value:
        raise MissingKeyError(provider, variable)
    return Secret(value)


def credential_variable(spec: CredentialSpec, settings: ProviderSettings) -> str:
    ref = settings.credentials.get(spec.name, f"env:{spec.env}")
    return ref[4:] if ref.startswith("env:") else spec.env
