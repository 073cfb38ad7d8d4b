"""Settings objects built from ``kling.toml`` (see :mod:`kling_core.config`).

Credentials are stored as references only: ``env:VAR`` (read from the environment) or
``keyring:SERVICE/NAME`` (read from the system keyring through the optional ``keyring``
package, ``pip install 'kling-core[keyring]'``). The value is read when a provider is used,
wrapped in :class:`Secret` so it never prints.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
from attrs import field

from kling_core.errors import ConfigError, MissingKeyError

KEYRING_REF_RE = re.compile(r"^keyring:([A-Za-z0-9_.@+-]+)/([A-Za-z0-9_.@+/-]+)$")
# Either kind of credential reference (the same pattern as "credential_ref" in the config schema).
CREDENTIAL_REF_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|keyring:[A-Za-z0-9_.@+-]+/[A-Za-z0-9_.@+/-]+)$")
CREDENTIAL_REF_HINT = (
    "must be env:VARIABLE or keyring:SERVICE/NAME (keys are read from the environment or the "
    "system keyring; secrets do not belong in config files)"
)
KEYRING_INSTALL_HINT = "pip install 'kling-core[keyring]'"


def is_credential_ref(value: object) -> bool:
    """Is ``value`` an ``env:VAR`` or ``keyring:SERVICE/NAME`` reference?"""
    return isinstance(value, str) and CREDENTIAL_REF_RE.fullmatch(value) is not None


# A provider name a config-declared provider can use (``[providers.NAME] uses = "fal"``).
PROVIDER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _finite(value: float | None) -> None:
    # TOML spells `inf` and `nan`; either would switch a limit off (a wait that never ends).
    if value is None:
        return
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        raise ValueError("must be a finite number, got an integer too large to use") from None
    if not finite:
        raise ValueError(f"must be a finite number, got {value}")


def _at_most(limit: float, unit: str) -> Callable[[object, attrs.Attribute[Any], float | None], None]:
    """The upper end of a sane range: a larger value is a typo or an attempt to switch a limit off."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        _finite(value)
        if value is not None and value > limit:
            raise ValueError(f"must be at most {limit:g}{unit}, got {value:g}")

    return check


def _positive(inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    _finite(value)
    if value is not None and not value > 0:
        raise ValueError(f"must be greater than 0, got {value}")


def _non_negative(inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    _finite(value)
    if not value >= 0:
        raise ValueError(f"must be 0 or more, got {value}")


def _fraction(inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    _finite(value)
    if not 0 <= value < 1:
        raise ValueError(f"must be at least 0 and below 1, got {value}")


def _at_least_one(inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    _finite(value)
    if value is not None and not value >= 1:
        raise ValueError(f"must be 1 or more, got {value}")


# Upper bounds of the numeric settings (also in schemas/config.schema.json as "maximum").
HOUR = 3600.0
DAY = 24 * HOUR
MAX_REQUEST_TIMEOUT = HOUR  # one HTTP request (a blocking Segmind v1 submit included)
MAX_POLL_DELAY = HOUR  # poll.initial, poll.max
MAX_POLL_FACTOR = 10.0
MAX_DEADLINE = 7 * DAY  # waiting for one job
MAX_STATUS_RETRIES = 100
MAX_RETRY_AFTER = DAY  # poll.max_retry_after: a longer Retry-After stops the retries
MAX_DOWNLOAD_BYTES = 2**40  # 1 TiB
MAX_DOWNLOAD_TIMEOUT = HOUR  # between two reads of a download
MAX_FFMPEG_TIMEOUT = DAY  # one ffmpeg run
MAX_IN_FLIGHT = 100_000  # jobs one client runs at once on one provider


def _env_refs(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    for name, ref in value.items():
        if not is_credential_ref(ref):
            raise ValueError(f"{name}: {CREDENTIAL_REF_HINT}")


def _provider_name(inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not PROVIDER_NAME_RE.match(value):
        raise ValueError(f"must be a provider name (letters, digits, _ . -), got {value!r}")


# A user name or password before the host: "@" ahead of the first "/", "?" or "#" after the scheme.
# (The same test is the "pattern" of URL settings in the config schema.)
_URL_USERINFO_RE = re.compile(r"^https?://[^/?#]*@")


def _http_url(inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if _URL_USERINFO_RE.match(value):
        # Not echoed: what stands before the "@" is a credential.
        raise ValueError("must not hold a user name or password (user:password@host): keys are "
                         "read from the environment or the keyring, never from a URL")
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")


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


def _typical_range(inst: object, attribute: attrs.Attribute[Any], value: tuple[float, float] | None) -> None:
    if value is None:
        return
    for end in value:
        _finite(end)
        if not 0 <= end <= MAX_DEADLINE:
            raise ValueError(f"must be two numbers of seconds from 0 to {MAX_DEADLINE:g}, got {end:g}")


def _typical_ranges(inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, tuple[float, float]]) -> None:
    for name, pair in value.items():
        try:
            _typical_range(inst, attribute, pair)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    # A range is its two ends in either order.
    return (min(pair), max(pair))


@attrs.frozen
class PollSettings:
    """Backoff for status polling: ``initial`` seconds growing ×``factor`` to ``max``."""

    initial: float = field(default=1.0, validator=[_non_negative, _at_most(MAX_POLL_DELAY, " s")])
    factor: float = field(default=1.5, validator=[_at_least_one, _at_most(MAX_POLL_FACTOR, "")])
    max: float = field(default=20.0, validator=[_non_negative, _at_most(MAX_POLL_DELAY, " s")])
    jitter: float = field(default=0.25, validator=_fraction)  # ± fraction of each delay
    # per job, seconds
    deadline: float = field(default=1800.0, validator=[_positive, _at_most(MAX_DEADLINE, " s")])
    # per status/result GET
    status_retries: int = field(default=5, validator=[_non_negative, _at_most(MAX_STATUS_RETRIES, "")])
    # a longer Retry-After: stop retrying
    max_retry_after: float = field(default=120.0, validator=[_non_negative, _at_most(MAX_RETRY_AFTER, " s")])
    # The schedule around the host's typical job duration (kling_core.client.schedule): seconds
    # after submit a job usually ends, for every model of the provider or by model name (either
    # overrides the model's capability data); polls at most ``window_every`` s apart inside it,
    # every ``outlier_fraction`` of the time since submit after it.
    typical_seconds: tuple[float, float] | None = field(default=None, validator=_typical_range)
    typical_by_model: Mapping[str, tuple[float, float]] = field(factory=dict, validator=_typical_ranges)
    window_every: float = field(default=1.5, validator=[_positive, _at_most(MAX_POLL_DELAY, " s")])
    outlier_fraction: float = field(default=0.05, validator=_fraction)
    # While a push channel is live (the host's status stream, an in-process webhook receiver):
    # a safety poll every push_every seconds. stream = false: never open the host's stream.
    push_every: float = field(default=60.0, validator=[_positive, _at_most(MAX_POLL_DELAY, " s")])
    stream: bool = True

    def typical_for(self, model: str | None) -> tuple[float, float] | None:
        """The configured typical duration range for ``model`` (None: none configured)."""
        if model is not None and model in self.typical_by_model:
            return _ordered(self.typical_by_model[model])
        return _ordered(self.typical_seconds) if self.typical_seconds is not None else None


@attrs.frozen
class RequestDefaults:
    """Defaults layered under what a request names explicitly."""

    model: Literal["kling-o1", "kling-o3"] | None = None
    quality: Literal["std", "pro"] | None = None
    keep_audio: bool | None = None
    edit_mode: Literal["edit", "reference"] | None = None


@attrs.frozen
class ProviderSettings:
    # Declares a new provider NAME with this installed provider's wire format (and these
    # settings); None for the settings of an installed provider. See kling_core.plugins.
    uses: str | None = field(default=None, validator=_provider_name)
    credentials: Mapping[str, str] = field(factory=dict, validator=_env_refs)  # name -> "env:VAR" / "keyring:S/N"
    base_url: str | None = field(default=None, validator=_http_url)
    # per HTTP request, seconds
    timeout: float = field(default=60.0, validator=[_positive, _at_most(MAX_REQUEST_TIMEOUT, " s")])
    poll: PollSettings | None = None  # None: the provider's own default (Provider.default_poll)
    defaults: RequestDefaults = field(factory=RequestDefaults)
    options: Mapping[str, Any] = field(factory=dict)  # provider-specific, checked by the plugin
    # When a wait passes its deadline, ask the host to cancel the job (hosts that can cancel);
    # off by default: a job that is slow, not dead, may still be picked up and paid for once.
    cancel_on_timeout: bool = False
    # Jobs this client runs at once on this provider (submitted, not yet finished); None: the
    # host's documented limit, else kling_core.inflight.DEFAULT_MAX_IN_FLIGHT. See kling_core.inflight.
    max_in_flight: int | None = field(default=None, validator=[_at_least_one, _at_most(MAX_IN_FLIGHT, "")])


@attrs.frozen
class MediaSettings:
    ffmpeg: str | None = None  # path to a system ffmpeg; else $KLING_FFMPEG, else imageio-ffmpeg
    allow_private_urls: bool = False  # allow loopback/private/link-local URL fetches (tests)
    max_download_bytes: int = field(default=2 * 1024**3, validator=[_positive, _at_most(MAX_DOWNLOAD_BYTES, " bytes")])
    download_timeout: float = field(default=60.0, validator=[_positive, _at_most(MAX_DOWNLOAD_TIMEOUT, " s")])
    ffmpeg_timeout: float = field(default=300.0, validator=[_positive, _at_most(MAX_FFMPEG_TIMEOUT, " s")])
    work_dir: str | None = None  # where rendered/ downloaded media is kept; default: a cache dir


FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
MAX_WEBHOOK_TOLERANCE = HOUR


def _port(inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a port number from 0 to 65535, got {value}")


@attrs.frozen
class WebhookSettings:
    """``kling webhooks serve`` and the in-process receiver (docs/webhooks.md)."""

    host: str = "127.0.0.1"  # a non-loopback address also needs --public
    port: int = field(default=8766, validator=_port)  # 0: a free port
    public_url: str | None = field(default=None, validator=_http_url)  # the base hosts reach (a tunnel)
    # seconds a signed delivery's timestamp may be off our clock, either way
    tolerance: float = field(default=300.0, validator=[_positive, _at_most(MAX_WEBHOOK_TOLERANCE, " s")])
    fal_jwks_url: str = field(default=FAL_JWKS_URL, validator=_http_url)
    jwks_max_age: float = field(default=DAY, validator=[_positive, _at_most(DAY, " s")])  # fal: never over 24 h
    jwks_min_refresh: float = field(default=60.0, validator=[_non_negative, _at_most(HOUR, " s")])
    confirm_timeout: float = field(default=30.0, validator=[_positive, _at_most(600.0, " s")])
    # least seconds between two status look-ups one job's unsigned callbacks cause (0: no pacing)
    confirm_min_interval: float = field(default=5.0, validator=[_non_negative, _at_most(600.0, " s")])
    secrets: Mapping[str, str] = field(factory=dict, validator=_env_refs)  # provider -> signing secret ref


@attrs.frozen
class CredentialSpec:
    """A credential a provider needs: its config name and default environment variable."""

    name: str
    env: str


def _credential_ref(spec: CredentialSpec, settings: ProviderSettings, first: bool) -> str:
    refs = settings.credentials
    if spec.name in refs:
        return refs[spec.name]
    if first and "key" in refs:  # the `key = "env:VAR"` shorthand names the provider's first credential
        return refs["key"]
    return f"env:{spec.env}"


# Reads a password from the keyring: (service, name) -> value or None. None here: the
# `keyring` package, imported on first use. Tests (and embedders) may set their own.
KeyringReader = Callable[[str, str], "str | None"]
keyring_reader: KeyringReader | None = None


def _keyring_get(provider: str, spec: CredentialSpec, ref: str) -> str | None:
    """The keyring's value for ``ref`` (None when it holds none); a ConfigError names the key."""
    where = f"providers.{provider}.credentials.{spec.name}"
    m = KEYRING_REF_RE.fullmatch(ref)
    if m is None:  # unreachable for validated settings
        raise ConfigError(CREDENTIAL_REF_HINT, key=where)
    service, name = m.group(1), m.group(2)
    reader = keyring_reader
    if reader is None:
        try:
            import keyring  # optional extra, imported lazily
        except ImportError:
            raise ConfigError(
                f"{ref} needs the keyring package, which is not installed: {KEYRING_INSTALL_HINT}", key=where
            ) from None
        reader = keyring.get_password
    try:
        value = reader(service, name)
    except Exception as exc:  # a backend failure; its text is not echoed (never a secret's place)
        raise ConfigError(f"could not read {ref} from the system keyring ({type(exc).__name__})", key=where) from None
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"the system keyring returned no text for {ref}", key=where)
    return value


def resolve_credential(provider: str, spec: CredentialSpec, settings: ProviderSettings,
                       environ: Mapping[str, str] | None = None, *, first: bool = False) -> Secret:
    """Read the credential named by config (``env:VAR`` or ``keyring:SERVICE/NAME``) or its
    default variable."""
    ref = _credential_ref(spec, settings, first)
    if ref.startswith("keyring:"):
        value = (_keyring_get(provider, spec, ref) or "").strip()
        if not value:
            raise MissingKeyError(provider, ref)
        return Secret(value)
    env = os.environ if environ is None else environ
    variable = credential_variable(spec, settings, first=first)
    value = env.get(variable, "").strip()
    if not value:
        raise MissingKeyError(provider, variable)
    return Secret(value)


def credential_status(provider: str, spec: CredentialSpec, settings: ProviderSettings,
                      environ: Mapping[str, str] | None = None, *, first: bool = False) -> dict[str, Any]:
    """Whether a credential is set and where it comes from, never its value (``kling keys``)."""
    ref = _credential_ref(spec, settings, first)
    row: dict[str, Any] = {"provider": provider, "credential": spec.name, "reference": ref}
    try:
        resolve_credential(provider, spec, settings, environ, first=first)
    except MissingKeyError:
        row.update(set=False, source="not set")
    except ConfigError as exc:
        row.update(set=False, source="not set", error=exc.reason)
    else:
        row.update(set=True, source=ref)
    return row


def credential_variable(spec: CredentialSpec, settings: ProviderSettings, *, first: bool = False) -> str:
    """The environment variable of an ``env:`` reference; the default variable otherwise."""
    ref = _credential_ref(spec, settings, first)
    return ref[4:] if ref.startswith("env:") else spec.env
