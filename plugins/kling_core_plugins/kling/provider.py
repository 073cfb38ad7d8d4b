"""The Kling official API provider: O1/O3 edits through ``/v1/videos/omni-video``.

Auth is a short-lived HS256 JWT minted from the access and secret keys (see :mod:`.jwt`).
Every submit carries the request's client key as ``external_task_id``, so a submit whose
answer was lost can be found again by that id instead of being sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from kling_core.sdk import (
    CredentialAuth,
    CredentialSpec,
    ExpiringTokenAuth,
    HttpProvider,
    PollSettings,
    ProviderCapabilities,
)
from kling_core_plugins.kling import jwt, wire


class KlingProvider(HttpProvider):
    name: ClassVar[str] = "kling"
    title: ClassVar[str] = "Kling AI developer API (omni-video)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec("access_key", "KLING_ACCESS_KEY"),
        CredentialSpec("secret_key", "KLING_SECRET_KEY"),
    )
    capabilities: ClassVar[ProviderCapabilities] = wire.CAPABILITIES
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    default_poll: ClassVar[PollSettings] = PollSettings(initial=5.0, factor=1.5, max=30.0)
    spec = wire.SPEC
    error_table = wire.ERRORS
    request_schema_name = "kling-omni-video-request.schema.json"
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "kling-omni-video-submit-response.schema.json",
        "status": "kling-omni-video-status-response.schema.json",
        "error": "kling-error-response.schema.json",
    }
    submit_body = staticmethod(wire.build_task)
    # For the contract kit: the Bearer token is a JWT signed with the secret key, iss = access key.
    signed_token: ClassVar[Mapping[str, object]] = {
        "type": "jwt", "algorithm": jwt.ALGORITHM, "key": "secret_key", "claims": {"iss": "access_key"},
    }

    def make_auth(self) -> CredentialAuth:
        access, secret = self.secrets["access_key"], self.secrets["secret_key"]
        return ExpiringTokenAuth(
            self.name, self.api_hosts, clock=self.ctx.clock, times=jwt.TIMES, refusal=jwt.REFUSAL,
            mint=lambda now: (jwt.sign(access.reveal(), secret.reveal(), now=now), *jwt.TIMES.window(now)),
        )
