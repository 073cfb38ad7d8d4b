"""The Kling official API provider: O1/O3 edits through ``/v1/videos/omni-video``.

Auth is a short-lived HS256 JWT minted from the access and secret keys (see :mod:`.jwt`).
Every submit carries the request's client key as ``external_task_id``, so a submit whose
answer was lost can be found again by that id instead of being sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from kling_core.contract.capabilities import ModelCapabilities, ProviderCapabilities
from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus
from kling_core.errors import ProviderError, SubmitUncertainError
from kling_core.http import HttpProvider, parse_retry_after, register_secret, try_json
from kling_core.provider import JobHandle, ProviderContext
from kling_core.settings import CredentialSpec, PollSettings
from kling_core.uploads import upload_local_media
from kling_core_plugins.kling import wire
from kling_core_plugins.kling.jwt import TokenCache


def _model(name: str) -> ModelCapabilities:
    return ModelCapabilities(
        model=name,
        edit_modes=tuple(wire.REFER_TYPES),
        qualities=("std", "pro"),
        max_references=4,  # images + elements with a reference video
        max_images=4,
        max_elements=0,
        # Kling takes element ids from its own element library, not images: not expressible
        # in the provider-neutral request, so elements are refused before any call.
        accepts_elements=False,
        accepts_aspect_ratio=False,  # "not supported" for video editing
        accepts_duration=False,  # the output follows the input video's length
        endpoints={"model_name": wire.MODEL_NAMES[name]},
    )


CAPABILITIES = ProviderCapabilities(
    models=tuple(_model(name) for name in wire.MODEL_NAMES),
    can_cancel=False,  # no cancel endpoint documented
    accepts_webhook=True,
    accepts_local_files=False,  # the video must be a URL
    supports_dry_run=False,
    can_reconcile=True,  # external_task_id carries the client key
    reports_progress=False,
    reports_cost=True,  # final_unit_deduction
)


class KlingProvider(HttpProvider):
    name: ClassVar[str] = "kling"
    title: ClassVar[str] = "Kling AI developer API (omni-video)"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec("access_key", "KLING_ACCESS_KEY"),
        CredentialSpec("secret_key", "KLING_SECRET_KEY"),
    )
    capabilities: ClassVar[ProviderCapabilities] = CAPABILITIES
    default_base_url: ClassVar[str] = wire.DEFAULT_BASE_URL
    default_poll: ClassVar[PollSettings] = PollSettings(initial=5.0, factor=1.5, max=30.0)
    error_table = wire.ERRORS
    response_schemas: ClassVar[Mapping[str, str]] = {
        "submit": "kling-omni-video-submit-response.schema.json",
        "status": "kling-omni-video-status-response.schema.json",
        "error": "kling-error-response.schema.json",
    }

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        # The token is a credential too: every minted one is registered for log scrubbing.
        self.tokens = TokenCache(
            self.secrets["access_key"], self.secrets["secret_key"], ctx.clock, on_mint=register_secret
        )

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens.token().reveal()}"}

    async def prepare(self, request: EditRequest) -> EditRequest:
        """The host fetches media by URL: local files go through an uploader plugin, if any."""
        return await upload_local_media(request, self.name)

    def request_schema(self, request: EditRequest) -> str | None:
        return "kling-omni-video-request.schema.json"

    # -- builders / parsers ------------------------------------------------------------
    def build_submit(self, request: EditRequest) -> httpx.Request:
        return self.make_request("POST", self.url(wire.TASKS_PATH), json_body=wire.build_task(request))

    def parse_submit(self, response: httpx.Response, request: EditRequest) -> JobHandle:
        data = wire.envelope_data(try_json(response), what="submit response")
        external = wire.external_id_of(data) or request.client_key
        return JobHandle(
            provider=self.name,
            job_id=wire.task_id_of(data, what="submit response"),
            model=request.model,
            client_key=request.client_key,
            data={"external_task_id": external} if external else {},
        )

    def build_status(self, handle: JobHandle) -> httpx.Request:
        return self.make_request("GET", self.url(f"{wire.TASKS_PATH}/{quote(handle.job_id, safe='')}"))

    def parse_status(self, response: httpx.Response, handle: JobHandle) -> JobStatus:
        return wire.parse_task(
            try_json(response), job_id=handle.job_id, model=handle.model or "kling-o1", submitted_at=handle.submitted_at
        )

    def map_error(self, response: httpx.Response, *, job_id: str | None = None) -> ProviderError:
        error = wire.error_from(
            response.status_code,
            try_json(response),
            job_id=job_id,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            text=response.text if "html" not in response.headers.get("content-type", "") else None,
        )
        if error.code in wire.TOKEN_CODES:
            self.tokens.invalidate()  # a fresh token (and a fixed clock) may succeed next time
        return error

    def may_retry(self, response: httpx.Response) -> bool:
        """Retry a status GET by the service code's meaning, not the HTTP status alone."""
        code = wire.body_code(try_json(response))
        rule = wire.ERRORS.by_code.get(str(code)) if code is not None else None
        if rule is not None:
            return rule.retryable
        return response.status_code != 429  # see wire.ERRORS.by_status[429]

    # -- I/O -----------------------------------------------------------------------------
    # Kling also reports errors inside HTTP 200 answers (service code != 0): such an answer
    # is mapped like an error response here, so the parsers only ever see code-0 documents.
    async def send_submit(self, request: httpx.Request, *, client_key: str | None, **kw: Any) -> httpx.Response:
        response = await super().send_submit(request, client_key=client_key, **kw)
        if wire.is_error_body(try_json(response)):
            raise self.map_error(response)
        return response

    async def send_get(self, request: httpx.Request, **kw: Any) -> httpx.Response:
        response = await super().send_get(request, **kw)
        if wire.is_error_body(try_json(response)):
            raise self.map_error(response, job_id=kw.get("job_id"))
        return response

    async def submit(self, request: EditRequest) -> JobHandle:
        try:
            return await super().submit(request)
        except SubmitUncertainError as exc:
            if not request.client_key:
                raise
            key = request.client_key
            raise SubmitUncertainError(
                f"{exc.reason.split(' ; it was NOT', 1)[0]}. Kling knows the job by its "
                f"external_task_id {key!r}: look it up with `kling status kling {key}` "
                "(a 'not found' there means it was never created)",
                provider=self.name,
                client_key=key,
                status_code=exc.status_code,
            ) from exc

    async def reconcile(self, client_key: str) -> JobHandle | None:
        """The job a lost submit created, found by its ``external_task_id``; None if none was.

        Safe to call any number of times: it only reads.
        """
        request = self.make_request("GET", self.url(f"{wire.TASKS_PATH}/{quote(client_key, safe='')}"))
        try:
            response = await self.send_get(request, phase="status", accept=(404,))
        except ProviderError as exc:
            if exc.code == str(wire.NOT_FOUND_CODE):
                return None
            raise
        if response.status_code == 404:
            return None  # a 404 without a service code: no such task either
        data = wire.envelope_data(try_json(response), what="task look-up")
        return JobHandle(
            provider=self.name,
            job_id=wire.task_id_of(data, what="task look-up"),
            client_key=client_key,
            data={"external_task_id": wire.external_id_of(data) or client_key},
        )

    def resume(self, job_id: str, *, model: str | None = None) -> JobHandle:
        """A handle from a task id or an ``external_task_id``: the query path takes either."""
        return JobHandle(provider=self.name, job_id=job_id, model=model or "kling-o1")
