"""Signing secrets of Standard Webhooks hosts, read from ``[webhooks.secrets]`` references.

``[webhooks.secrets] replicate = "env:REPLICATE_WEBHOOK_SECRET"`` (the default for a provider
is ``env:{NAME}_WEBHOOK_SECRET``), or ``keyring:SERVICE/NAME``, read as provider credentials
are. The value (``whsec_...``, from Replicate's ``GET /v1/webhooks/default/secret`` or
WaveSpeed's ``GET /api/v3/webhook/secret``) never appears in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from kling_core.errors import ConfigError
from kling_core.settings import CredentialSpec, ProviderSettings, WebhookSettings, resolve_credential
from kling_core.webhooks.signatures import standard_key


def secret_variable(provider: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", provider).upper() + "_WEBHOOK_SECRET"


def secret_ref(settings: WebhookSettings, provider: str) -> str:
    return settings.secrets.get(provider) or f"env:{secret_variable(provider)}"


def signing_key(settings: WebhookSettings, provider: str, environ: Mapping[str, str] | None = None,
                derive: Callable[[str], bytes] = standard_key) -> bytes:
    """The HMAC key for ``provider``'s callbacks (``derive``: the scheme's secret to key)."""
    where = f"webhooks.secrets.{provider}"
    spec = CredentialSpec("webhook_secret", secret_variable(provider))
    try:
        secret = resolve_credential(provider, spec, ProviderSettings(credentials={"webhook_secret":
                                                                                  secret_ref(settings, provider)}),
                                    environ)
    except ConfigError as exc:
        ref = secret_ref(settings, provider)
        raise ConfigError(f"{provider}'s webhook signing secret is not set ({ref}); get it from the host "
                          f"(Replicate: GET /v1/webhooks/default/secret; WaveSpeed: GET /api/v3/webhook/secret) and store it there", key=where) from exc
    try:
        return derive(secret.reveal())
    except ValueError as exc:
        raise ConfigError(f"{provider}'s webhook signing secret is {exc}", key=where) from None
