"""Whether a credential a plugin sent is the test's key, not just any token.

A recorded header such as ``Key <SECRET>`` only says where a token goes. The replay builds the
provider with canary keys (:func:`kling_core.testing.doubles.canary_credentials`), so what was
sent there must carry one of them: a plugin sending a hard-coded key or the wrong one of two
fails. A token the host handed out in an earlier answer of the replay (a storage token) is the
host's, not the plugin's, and passes. A signed token (Kling's JWT) does not carry the key itself; the provider class declares
how it is made, as data, and the kit verifies it::

    signed_token = {"type": "jwt", "algorithm": "HS256", "key": "secret_key", "claims": {"iss": "access_key"}}

``key`` and the claim values name the provider's ``CredentialSpec.name`` entries: the token
must verify with that credential and each claim must hold that credential. Messages name the
header and the credential, never a value.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from kling_core.provider import Provider
from kling_core.testing.cassettes import SECRET, RecordedRequest
from kling_core.testing.matching import secret_values

_JWT_TYPES = ("jwt",)


def credential_values(provider_cls: type[Provider], environ: Mapping[str, str]) -> dict[str, str]:
    """The canary value of each credential, by its name (``api_key``, ``access_key`` ...)."""
    return {spec.name: environ[spec.env] for spec in provider_cls.credentials if spec.env in environ}


def signed_token_declaration(provider_cls: type[Provider]) -> Mapping[str, Any] | None:
    declared = getattr(provider_cls, "signed_token", None)
    return declared if isinstance(declared, Mapping) else None


def declaration_problems(declared: Mapping[str, Any], creds: Mapping[str, str]) -> list[str]:
    """What is wrong with a ``signed_token`` declaration itself."""
    out = []
    if declared.get("type", "jwt") not in _JWT_TYPES:
        out.append(f"signed_token.type {declared.get('type')!r} is not one of {', '.join(_JWT_TYPES)}")
    if not isinstance(declared.get("algorithm"), str):
        out.append("signed_token.algorithm is missing (e.g. 'HS256')")
    names = [declared.get("key"), *dict(declared.get("claims") or {}).values()]
    for name in names:
        if name not in creds:
            out.append(f"signed_token names credential {name!r}, which the provider does not declare ({', '.join(creds)})")
    return out


def _decoded(token: str) -> str:
    """A Basic credential's ``user:password`` (else the token itself)."""
    try:
        return base64.b64decode(token, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return token


def _which(value: Any, creds: Mapping[str, str]) -> str:
    """Which credential a value is, for a message that must not print it."""
    name = next((n for n, v in creds.items() if v == value), None)
    return f"the test's {name}" if name else "something else"


def jwt_problems(header: str, token: str, declared: Mapping[str, Any], creds: Mapping[str, str]) -> list[str]:
    import jwt as pyjwt

    key_name = str(declared["key"])
    options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short HMAC keys: the host chose them, not the test
            claims: dict[str, Any] = pyjwt.decode(token, creds[key_name], algorithms=[declared["algorithm"]], options=options)
    except pyjwt.InvalidSignatureError:
        return [f"header {header}: the token's signature does not verify with the test's {key_name} (signed with another key?)"]
    except pyjwt.PyJWTError as exc:
        return [f"header {header}: not a {declared['algorithm']} JWT the provider's signed_token declares ({type(exc).__name__})"]
    out = []
    for claim, name in dict(declared.get("claims") or {}).items():
        if claims.get(claim) != creds[name]:
            held = "missing" if claim not in claims else f"holds {_which(claims[claim], creds)}"
            out.append(f"header {header}: the token's claim {claim!r} {held}, expected the test's {name}")
    return out


def credential_problems(
    recorded: RecordedRequest,
    actual: httpx.Request,
    creds: Mapping[str, str],
    declared: Mapping[str, Any] | None = None,
    issued: Collection[str] = (),
) -> list[str]:
    """Each ``<SECRET>`` header whose sent token is not the test's credential.

    ``issued``: every string the answers served so far held; a token among them was handed out
    by the host (fal's storage token), not made up by the plugin, and is not judged.
    """
    out: list[str] = []
    for name, value in recorded.headers.items():
        sent = actual.headers.get(name)
        if SECRET not in value or sent is None:
            continue  # request_problems reports a header not sent
        for token in secret_values(value, sent):  # no match: request_problems reports it
            if token in issued:
                continue
            carries_key = any(c in token or c in _decoded(token) for c in creds.values())
            if declared is not None and not carries_key:  # a key sent as it is needs no signature
                out += jwt_problems(name, token, declared, creds)
            elif not carries_key:
                hint = (
                    " (a signed token? declare signed_token on the provider class so the kit can verify it)"
                    if token.startswith("eyJ") else " (a hard-coded or wrong key?)"
                )
                out.append(
                    f"header {name}: the credential sent is not the test's {' or '.join(creds) or 'key'}{hint}"
                )
    return out
