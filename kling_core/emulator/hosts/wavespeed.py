"""WaveSpeedAI on the emulator, under ``/wavespeed`` (``https://api.wavespeed.ai`` becomes ``<emulator>/wavespeed``).

=================================================================  =========================================
``POST /wavespeed/api/v3/kwaivgi/<family>/video-edit[?webhook=]``  create a prediction (``prompt``, ``video``,
                                                                   ``images``, ``keep_original_sound``,
                                                                   ``enable_sync_mode``)
``GET  /wavespeed/api/v3/predictions/<id>/result``                 the prediction (also without ``/result``)
``GET  /wavespeed/api/v3/webhook/secret``                          the webhook signing secret (``whsec_…``)
``GET  /wavespeed/files/<key>/<name>``                             results (public, as WaveSpeed's CDN URLs are)
=================================================================  =========================================

Every answer is the ``{"code", "message", "data"}`` envelope; a prediction is ``created``,
``processing``, ``completed`` (``outputs``) or ``failed`` (``error``), always with HTTP 200.
Errors carry the HTTP status as ``code`` and ``data: null`` [INF]. Webhooks POST the bare
prediction when it ends, signed as WaveSpeed documents: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v3,<hex HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed by the secret
without its ``whsec_`` prefix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kling_core.contract.prompt import normalize_prompt
from kling_core.emulator.engine import Job
from kling_core.emulator.failures import UnknownFailure, choose
from kling_core.emulator.hosts.base import BadJson, Host, HostContext, is_http_url

NAME = "wavespeed"
UPSTREAM = "https://api.wavespeed.ai"  # the real API this host stands in for
# Model family (the path segment after kwaivgi/) -> (canonical model, quality, most `images`), as
# WaveSpeed's model pages list them: the O1 std page says "Max 10" images [INF for O1 pro], the
# O3 pages "up to 4".
FAMILIES: Mapping[str, tuple[str, str, int]] = {
    "kling-video-o1-std": ("kling-o1", "std", 10),
    "kling-video-o1": ("kling-o1", "pro", 10),
    "kling-video-o3-std": ("kling-o3", "std", 4),
    "kling-video-o3-pro": ("kling-o3", "pro", 4),
}
FIELDS = frozenset({"prompt", "video", "images", "keep_original_sound", "enable_sync_mode"})
PROMPT_MAX = 2500  # Kling's prompt limit [INF for WaveSpeed]
SYNC_WAIT = 600.0  # how long enable_sync_mode holds the request before the gateway's 504
# Scripted failures refused at submit, as (HTTP status, message) [INF bodies].
SUBMIT_FAILURES: Mapping[str, tuple[int, str]] = {
    "insufficient_credits": (402, "Insufficient credits, please top up"),
    "server_error": (500, "internal server error"),
}
CONTENT_POLICY = "content flagged as potentially sensitive by the safety checker"


def envelope(data: Any, code: int = 200, message: str = "success") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(envelope(None, status, message), status_code=status, headers=headers)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate(body: Any, images_max: int) -> tuple[dict[str, Any] | None, list[str]]:
    """(fields, problems) for a video-edit body; every problem listed, each naming the field [INF wording]."""
    if not isinstance(body, dict):
        return None, ["request body must be a JSON object"]
    out = [f"{key}: unknown parameter" for key in sorted(set(body) - FIELDS)]
    prompt, video = body.get("prompt"), body.get("video")
    if not isinstance(prompt, str) or not prompt.strip():
        out.append("prompt: required, a non-empty string")
    elif len(prompt) > PROMPT_MAX:
        out.append(f"prompt: at most {PROMPT_MAX} characters, got {len(prompt)}")
    if not is_http_url(video):
        out.append("video: required, an http(s) URL")
    images = body.get("images", [])
    if not isinstance(images, list) or not all(is_http_url(u) for u in images):
        out.append("images: must be an array of http(s) URLs")
    elif len(images) > images_max:
        out.append(f"images: at most {images_max} items, got {len(images)}")
    for flag in ("keep_original_sound", "enable_sync_mode"):
        if flag in body and not isinstance(body[flag], bool):
            out.append(f"{flag}: must be a boolean")
    if out:
        return None, out
    return {"prompt": prompt, "video": video, "images": list(images),
            "keep_audio": body.get("keep_original_sound", True), "sync": body.get("enable_sync_mode", False)}, out


class WaveSpeedHost(Host):
    name: ClassVar[str] = NAME

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(ctx)
        self.engine.on_finish(NAME, self.on_finish)
        # Derived from the emulator's secret: stable across restarts with a state folder.
        self.webhook_secret = hmac.new(ctx.secret, b"wavespeed-webhook", hashlib.sha256).hexdigest()

    def authorise(self, request: Request) -> Response | None:
        """None for a well-formed ``Authorization: Bearer <key>`` (a configured key, if any)."""
        if self.key_refusal(request, "Bearer") is None:
            return None
        return error(401, "Unauthorized: invalid api key")

    # -- routing ------------------------------------------------------------------------------
    def disconnected(self, request: Request) -> Response:
        return error(499, "client disconnected")

    def internal_error(self, request: Request) -> Response:
        return error(500, "internal server error")

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        return error(405, f"method {request.method} not allowed", {"allow": allowed})

    async def dispatch(self, request: Request) -> Response:
        s = self.segments(request)
        method = "GET" if request.method == "HEAD" and s[:1] == ["files"] else request.method
        if len(s) == 5 and s[:3] == ["api", "v3", "kwaivgi"] and s[4] == "video-edit":
            return await self.only(request, method, "POST", lambda: self.submit(request, s[3]))
        if len(s) in (4, 5) and s[:3] == ["api", "v3", "predictions"] and s[4:] in ([], ["result"]):
            return await self.only(request, method, "GET", lambda: self.prediction(request, s[3]))
        if s == ["api", "v3", "webhook", "secret"]:
            return await self.only(request, method, "GET", lambda: self.secret(request))
        if len(s) == 3 and s[0] == "files":
            return await self.only(request, method, "GET", lambda: self.file(s[1], s[2]))
        self.note(request, "unknown path")
        return error(404, "not found")

    # -- predictions ------------------------------------------------------------------------------
    async def submit(self, request: Request, family: str) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        if family not in FAMILIES:
            self.note(request, f"unknown model {family[:60]!r}")
            return error(404, f"model kwaivgi/{family[:100]}/video-edit not found")
        webhook = request.query_params.get("webhook")
        if webhook is not None and not is_http_url(webhook):
            return error(400, "webhook: must be an http(s) URL")
        body, refused = await self.read_body(request, lambda: error(413, "request body too large"),
                                             lambda exc: self._bad_json(request, exc))
        if refused is not None:
            return refused
        model, quality, images_max = FAMILIES[family]
        fields, problems = validate(body, images_max)
        if fields is None:
            self.note(request, f"{len(problems)} input problem(s)")
            return error(400, "; ".join(problems))
        try:
            prompt, fail = choose(fields["prompt"], request.headers, self.ctx.host.fail, self.name)
        except UnknownFailure as exc:
            return error(400, str(exc))
        if not prompt:
            return error(400, "prompt: required, a non-empty string")
        if fail == "rate_limited":
            self.note(request, "scripted rate_limited")
            return error(429, "Too many requests", {"retry-after": str(math.ceil(self.ctx.settings.retry_after))})
        if fail is not None and fail in SUBMIT_FAILURES:
            self.note(request, f"scripted {fail}")
            return error(*SUBMIT_FAILURES[fail])
        intake = {"prompt": normalize_prompt(prompt), "video": fields["video"], "images": fields["images"],
                  "elements": [], "keep_audio": fields["keep_audio"], "model": model, "quality": quality,
                  "edit_mode": "edit"}
        job = Job(id=self.engine.new_id().replace("-", ""), host=NAME, app=family,
                  endpoint=f"kwaivgi/{family}/video-edit", intake=intake, submitted_at=time.time(), fail=fail,
                  webhook_url=webhook, origin=self.base(request))
        self.engine.submit(job)
        self.note(request, f"id={job.id}" + (f" fail={fail}" if fail else ""))
        if fields["sync"]:
            try:
                await asyncio.wait_for(self.engine.wait(job), SYNC_WAIT)
            except TimeoutError:
                return error(504, "Gateway Timeout")  # documented: the task may still finish
        return JSONResponse(envelope(self.prediction_doc(job)))

    def _bad_json(self, request: Request, exc: BadJson) -> Response:
        self.note(request, "body is not JSON")
        return error(400, f"invalid JSON body: {exc.message} (at character {exc.position})")

    def prediction_doc(self, job: Job) -> dict[str, Any]:
        """The prediction as the result endpoint (and a webhook) shows it."""
        outputs: list[str] = []
        failure = ""
        if job.state == "queued":
            status = "created"
        elif job.state == "running":
            status = "processing"
        elif job.output is not None:
            status = "completed"
            outputs = [f"{job.origin}/files/{job.output['key']}/{job.output['name']}"]
        elif job.error == "completed_with_error":  # done, yet with an error and no output
            status, failure = "completed", "elementReferList: size must be between 1 and 3"
        else:
            status, failure = "failed", self.failure(job)
        doc: dict[str, Any] = {
            "id": job.id, "model": job.endpoint, "outputs": outputs,
            "urls": {"get": f"{job.origin}/api/v3/predictions/{job.id}/result"},
            "has_nsfw_contents": [False] * len(outputs), "status": status,
            "created_at": _iso(job.submitted_at), "error": failure,
        }
        if job.completed_at is not None and job.started_at is not None:
            doc["timings"] = {"inference": int((job.completed_at - job.started_at) * 1000)}
        return doc

    @staticmethod
    def failure(job: Job) -> str:
        if job.state == "cancelled":
            return "task cancelled"
        if job.problems:
            return job.problems_text()
        if job.error == "content_policy":
            return CONTENT_POLICY
        return f"generation failed: {job.error_message or 'internal error'}"

    async def prediction(self, request: Request, prediction_id: str) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        job = self.own_job(request, prediction_id, "prediction")
        if job is None:
            return error(404, "prediction not found")
        return JSONResponse(envelope(self.prediction_doc(job)))

    async def secret(self, request: Request) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        return JSONResponse(envelope({"secret": f"whsec_{self.webhook_secret}"}))  # data shape [INF]

    async def file(self, key: str, name: str) -> Response:
        return self.stored_file(key, name, lambda: error(404, "file not found"))

    # -- webhooks ---------------------------------------------------------------------------------
    def signed_headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        webhook_id = uuid.uuid4().hex
        timestamp = str(int(time.time() if now is None else now))
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.webhook_secret.encode(), signed, hashlib.sha256).hexdigest()
        return {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": f"v3,{digest}"}

    async def on_finish(self, job: Job) -> None:
        await self.send_callback(job, self.prediction_doc, self.signed_headers)

    # -- what to tell clients -----------------------------------------------------------------
    def hints(self, base_url: str) -> dict[str, Any]:
        return self.bearer_hints(base_url, "WAVESPEED_API_KEY", UPSTREAM,
                                 "api/v3/kwaivgi/kling-video-o1-std/video-edit")

    def hint_line(self, base_url: str) -> str:
        return self.bearer_hint_line(base_url, "WAVESPEED_API_KEY", UPSTREAM, "api/v3/...")
