"""The Kling official API provider: O1/O3 edits through ``/v1/videos/omni-video``.

Auth is a short-lived HS256 JWT minted from the access and secret keys (see :mod:`.jwt`).
Every submit carries the request's client key as ``external_task_id``, so a submit whose
answer was lost can be found again by that id instead of being sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import httpx

from kling_core.sdk import (
    CredentialAuth,
    CredentialSpec,
    ErrorInfo,
    HttpProvider,
    PollSettings,
    ProviderCapabilities,
)
from kling_core_plugins.kling import wire
from kling_core_plugins.kling.jwt import KlingTokenAuth, TokenCache


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

    def make_auth(self) -> CredentialAuth:
        tokens = TokenCache(self.secrets["access_key"], self.secrets["secret_key"], self.ctx.clock)
        return KlingTokenAuth(self.name, self.api_hosts, tokens, rejected_codes=wire.TOKEN_CODES)

    def error_info(self, response: httpx.Response) -> ErrorInfo:
        # A fresh token refused too: the auth flow left a note naming the clock offset.
        info = super().error_info(response)
        return self.auth.explain(info, response) if isinstance(self.auth, KlingTokenAuth) else info
