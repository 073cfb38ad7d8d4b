"""Replicate's predictions API on the emulator, under ``/replicate``.

=================================================  ==============================================
``POST /replicate/v1/models/<owner>/<name>/predictions``  create a prediction (``{input, webhook?,
                                                   webhook_events_filter?}``) of ``kwaivgi/kling-o1``
                                                   or ``kwaivgi/kling-v3-omni-video``
``GET  /replicate/v1/predictions/<id>``            the prediction: ``starting`` / ``processing`` /
                                                   ``succeeded`` (``output``: a URI) / ``failed``
                                                   (``error``) / ``canceled`` / ``aborted``
``POST /replicate/v1/predictions/<id>/cancel``     cancel; answers the prediction
``GET  /replicate/v1/webhooks/default/secret``     ``{"key": "whsec_..."}``: the signing secret
``GET  /replicate/files/<key>/<name>``             outputs (public, as replicate.delivery URLs are)
=================================================  ==============================================

Auth is ``Authorization: Bearer <token>``. Errors are problem details ``{"title", "detail",
"status"}``; a throttled create is 429 with the documented ``detail`` and ``Retry-After``.
Webhooks post the prediction when it finishes (the ``completed`` event; without a filter too)
to loopback URLs, signed the Standard Webhooks way Replicate documents: ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
under the ``whsec_`` secret, which is derived from this emulator's state secret (stable across
restarts with a state folder). Shapes the docs leave open are [INF] in docs/emulator.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kling_core.contract.prompt import normalize_prompt
from kling_core.emulator.engine import Job
from kling_core.emulator.failures import UnknownFailure, choose
from kling_core.emulator.hosts.base import BadJson, Host, HostContext, is_http_url

NAME = "replicate"
UPSTREAM = "https://api.replicate.com"  # the real API this host stands in for
# Official model -> (canonical model, its `mode` values -> canonical quality, durations).
MODELS: Mapping[str, tuple[str, Mapping[str, str], tuple[int, int]]] = {
    "kwaivgi/kling-o1": ("kling-o1", {"std": "std", "pro": "pro"}, (3, 10)),
    "kwaivgi/kling-v3-omni-video": ("kling-o3", {"standard": "std", "pro": "pro"}, (3, 15)),
}
REFERENCE_TYPES: Mapping[str, str] = {"base": "edit", "feature": "reference"}
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
PROMPT_MAX = 2500
IMAGES_WITH_VIDEO = 4
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
# Inputs the model pages document that the emulator does not serve (it renders edits only).
NOT_EMULATED = ("start_image", "end_image", "multi_prompt")
KNOWN_INPUTS = frozenset({"prompt", "reference_video", "video_reference_type", "keep_original_sound", "mode",
                          "reference_images", "aspect_ratio", "duration", "generate_audio", *NOT_EMULATED})
# A scripted job failure: the prediction's `error` string [INF wording].
JOB_FAILURES: Mapping[str, str] = {
    "content_policy": "The input or output was flagged as sensitive. Please try again with different inputs.",
    "completed_with_error": "elementReferList: size must be between 1 and 3",
}


# A scripted outcome that ends a prediction before it runs -> its status (`error` stays null):
# `aborted` when a deadline passed first [DOC changelog 2025-10-16-prediction-deadlines].
ENDED_UNRUN: Mapping[str, str] = {"aborted": "aborted"}


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "detail": detail, "status": status, **extra}


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=headers)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate(model: str, body: Any) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """(prediction, problems) for a create body; each problem is (field, description)."""
    if not isinstance(body, dict):
        return None, [("body", "must be a JSON object")]
    out: list[tuple[str, str]] = []
    for key in body:
        if key not in ("input", "webhook", "webhook_events_filter", "stream"):
            out.append((key, "is not a create-prediction field"))
    webhook = body.get("webhook")
    if webhook is not None and not is_http_url(webhook):
        out.append(("webhook", "must be an http(s) URL"))
    events = body.get("webhook_events_filter")
    if events is not None and (not isinstance(events, list) or not all(e in WEBHOOK_EVENTS for e in events)):
        out.append(("webhook_events_filter", f"must be an array of {', '.join(WEBHOOK_EVENTS)}"))
    inp = body.get("input")
    if not isinstance(inp, dict):
        out.append(("input", "is required and must be an object"))
        return None, out
    intake = _validate_input(model, inp, out)
    if out or intake is None:
        return None, out
    return {"intake": intake, "input": inp, "webhook": webhook, "events": events}, out


def _validate_input(model: str, inp: dict[str, Any], out: list[tuple[str, str]]) -> dict[str, Any] | None:
    canonical, modes, (lo, hi) = MODELS[model]
    for key in inp:
        if key not in KNOWN_INPUTS:
            out.append((f"input.{key}", "Additional property is not allowed"))  # [INF]
        elif key in NOT_EMULATED:
            out.append((f"input.{key}", "is not emulated (the emulator serves video edits only)"))
    prompt = inp.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        out.append(("input.prompt", "is required and must be a non-empty string"))
    elif len(prompt) > PROMPT_MAX:
        out.append(("input.prompt", f"must be at most {PROMPT_MAX} characters"))
    video = inp.get("reference_video")
    if not is_http_url(video):
        out.append(("input.reference_video", "is required here and must be an http(s) URL "
                                             "(the emulator serves video edits only)"))
    ref_type = inp.get("video_reference_type", "feature")
    if ref_type not in REFERENCE_TYPES:
        out.append(("input.video_reference_type", "must be one of: feature, base"))
    mode = inp.get("mode", "pro")
    if mode not in modes:
        out.append(("input.mode", f"must be one of: {', '.join(modes)}"))
    keep = inp.get("keep_original_sound", True)
    if not isinstance(keep, bool):
        out.append(("input.keep_original_sound", "must be a boolean"))
    if inp.get("generate_audio") is True:
        out.append(("input.generate_audio", "is mutually exclusive with reference_video"))
    images = inp.get("reference_images", [])
    if not isinstance(images, list) or not all(is_http_url(u) for u in images):
        out.append(("input.reference_images", "must be an array of http(s) URLs"))
    elif len(images) > IMAGES_WITH_VIDEO:
        out.append(("input.reference_images", f"at most {IMAGES_WITH_VIDEO} with a reference_video"))
    aspect = inp.get("aspect_ratio")
    if aspect is not None and aspect not in ASPECT_RATIOS:
        out.append(("input.aspect_ratio", f"must be one of: {', '.join(ASPECT_RATIOS)}"))
    duration = inp.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)
                                 or not lo <= duration <= hi):
        out.append(("input.duration", f"must be an integer from {lo} to {hi}"))
    if out or not isinstance(prompt, str):
        return None
    return {"prompt": normalize_prompt(prompt), "video": video, "keep_audio": keep, "images": list(images),
            "elements": [], "model": canonical, "quality": modes[mode], "edit_mode": REFERENCE_TYPES[ref_type],
            "aspect_ratio": aspect, "duration": duration}


class ReplicateHost(Host):
    name: ClassVar[str] = NAME

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(ctx)
        # One signing secret per emulator state, as Replicate has one per account.
        raw = hmac.new(ctx.secret, b"replicate-webhook-signing-secret", hashlib.sha256).digest()[:24]
        self.webhook_secret = "whsec_" + base64.b64encode(raw).decode()
        self.engine.on_finish(NAME, self.on_finish)

    def authorise(self, request: Request) -> Response | None:
        if self.key_refusal(request, "Bearer") is None:
            return None
        return _json(problem(401, "Unauthenticated", "You did not pass a valid authentication token"), 401)

    # -- routing ------------------------------------------------------------------------------
    def disconnected(self, request: Request) -> Response:
        return _json(problem(499, "Client disconnected", "The client went away"), 499)

    def internal_error(self, request: Request) -> Response:
        return _json(problem(500, "Internal server error", "Internal server error"), 500)

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        return _json(problem(405, "Method not allowed", f"Method {request.method} not allowed"), 405,
                     {"allow": allowed})

    async def dispatch(self, request: Request) -> Response:
        s = self.segments(request)
        method = "GET" if request.method == "HEAD" and s[:1] == ["files"] else request.method
        if len(s) == 5 and s[:2] == ["v1", "models"] and s[4] == "predictions":
            return await self.only(request, method, "POST", lambda: self.create(request, f"{s[2]}/{s[3]}"))
        if len(s) == 3 and s[:2] == ["v1", "predictions"]:
            return await self.only(request, method, "GET", lambda: self.get(request, s[2]))
        if len(s) == 4 and s[:2] == ["v1", "predictions"] and s[3] == "cancel":
            return await self.only(request, method, "POST", lambda: self.cancel(request, s[2]))
        if s == ["v1", "webhooks", "default", "secret"]:
            return await self.only(request, method, "GET", lambda: self.secret(request))
        if len(s) == 3 and s[0] == "files":
            return await self.only(request, method, "GET", lambda: self.file(s[1], s[2]))
        self.note(request, "unknown path")
        return _json(problem(404, "Not found", "Not found"), 404)

    # -- predictions ------------------------------------------------------------------------------
    async def create(self, request: Request, model: str) -> Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        if model not in MODELS:
            self.note(request, "unknown model")
            return _json(problem(404, "Model not found", f"{model[:100]} is not served here "
                                                         f"(emulated: {', '.join(MODELS)})"), 404)
        body, refused = await self.read_body(
            request, lambda: _json(problem(413, "Request too large", "Request body too large"), 413),
            lambda exc: self._bad_json(request, exc))
        if refused is not None:
            return refused
        prediction, problems = validate(model, body)
        if prediction is None:
            return self._invalid(request, problems)
        intake = prediction["intake"]
        try:
            intake["prompt"], fail = choose(intake["prompt"], request.headers, self.ctx.host.fail, self.name)
        except UnknownFailure as exc:
            return self._invalid(request, [("input.prompt", str(exc))])
        if not intake["prompt"]:
            return self._invalid(request, [("input.prompt", "must not be empty")])
        refusal = self._scripted_refusal(request, fail)
        if refusal is not None:
            return refusal
        job = Job(id=base64.b32encode(uuid.UUID(self.engine.new_id()).bytes).decode().lower().rstrip("=")[:26],
                  host=NAME, app=model, endpoint=model, intake={**intake, "input": prediction["input"],
                                                                "events": prediction["events"]},
                  submitted_at=time.time(), fail=fail, webhook_url=prediction["webhook"], origin=self.base(request))
        self.engine.submit(job)
        self.note(request, f"id={job.id}" + (f" fail={fail}" if fail else ""))
        return _json(self.prediction(job, job.origin), 201)

    def _scripted_refusal(self, request: Request, fail: str | None) -> Response | None:
        if fail == "rate_limited":
            wait = math.ceil(self.ctx.settings.retry_after)
            self.note(request, "scripted rate_limited")
            return _json({"detail": f"Request was throttled. Your rate limit resets in ~{wait}s."}, 429,
                         {"retry-after": str(wait)})
        if fail == "insufficient_credits":
            self.note(request, "scripted insufficient_credits")
            return _json(problem(402, "Insufficient credit", "You have insufficient credit to run this model."), 402)
        if fail == "server_error":
            self.note(request, "scripted server_error")
            return _json(problem(500, "Internal server error", "Internal server error"), 500)
        return None

    def _invalid(self, request: Request, problems: list[tuple[str, str]]) -> Response:
        self.note(request, f"{len(problems)} input problem(s)")
        detail = "".join(f"- {where}: {why}\n" for where, why in problems)
        fields = [{"type": "invalid", "field": where, "description": why} for where, why in problems]
        return _json(problem(422, "Input validation failed", detail, invalid_fields=fields), 422)

    def _bad_json(self, request: Request, exc: BadJson) -> Response:
        self.note(request, "body is not JSON")
        return _json(problem(400, "Invalid JSON", f"{exc.message} (at character {exc.position})"), 400)

    def prediction(self, job: Job, base: str) -> dict[str, Any]:
        """The prediction object, with URLs under ``base`` (this host as the client reached it)."""
        output, error = None, None
        if job.state == "queued":
            status = "starting"
        elif job.state == "running":
            status = "processing"
        elif job.state == "cancelled":
            status = "canceled"
        elif job.error is not None and job.error in ENDED_UNRUN:
            status = ENDED_UNRUN[job.error]
        elif job.output is not None:
            status, output = "succeeded", f"{base}/files/{job.output['key']}/{job.output['name']}"
        else:
            status, error = "failed", self.failure(job)
        doc: dict[str, Any] = {
            "id": job.id, "model": job.endpoint, "version": "emulated", "input": job.intake.get("input", {}),
            "logs": "".join(f"{entry['message']}\n" for entry in job.logs), "output": output, "error": error,
            "status": status, "data_removed": False, "created_at": _iso(job.submitted_at),
            "started_at": _iso(job.started_at), "completed_at": _iso(job.completed_at),
            "urls": {"get": f"{base}/v1/predictions/{job.id}", "cancel": f"{base}/v1/predictions/{job.id}/cancel"},
        }
        if job.started_at is not None and job.completed_at is not None:
            doc["metrics"] = {"predict_time": round(job.completed_at - job.started_at, 3),
                              "total_time": round(job.completed_at - job.submitted_at, 3)}
        return doc

    @staticmethod
    def failure(job: Job) -> str:
        if job.problems:
            return job.problems_text()
        if job.error is not None and job.error in JOB_FAILURES:
            return JOB_FAILURES[job.error]
        return f"Prediction failed: {job.error_message or 'internal error'}"

    def _job(self, request: Request, prediction_id: str) -> Job | Response:
        refused = self.authorise(request)
        if refused is not None:
            return refused
        job = self.own_job(request, prediction_id, "prediction")
        if job is None:
            return _json(problem(404, "Not found", "The requested prediction does not exist"), 404)
        return job

    async def get(self, request: Request, prediction_id: str) -> Response:
        job = self._job(request, prediction_id)
        return job if isinstance(job, Response) else _json(self.prediction(job, self.base(request)))

    async def cancel(self, request: Request, prediction_id: str) -> Response:
        job = self._job(request, prediction_id)
        if isinstance(job, Response):
            return job
        self.note(request, self.engine.cancel(job))  # a finished prediction is answered unchanged [INF]
        return _json(self.prediction(job, self.base(request)))

    async def secret(self, request: Request) -> Response:
        refused = self.authorise(request)
        return refused if refused is not None else _json({"key": self.webhook_secret})

    async def file(self, key: str, name: str) -> Response:
        return self.stored_file(key, name, lambda: _json(problem(404, "Not found", "File not found"), 404))

    # -- webhooks ---------------------------------------------------------------------------------
    def signed_headers(self, body: bytes, now: float | None = None) -> dict[str, str]:
        """Standard Webhooks headers for ``body``: a fresh id, the time, and the v1 signature."""
        msg_id = f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(now if now is not None else time.time()))
        key = base64.b64decode(self.webhook_secret.removeprefix("whsec_"))
        mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return {"webhook-id": msg_id, "webhook-timestamp": timestamp,
                "webhook-signature": "v1," + base64.b64encode(mac).decode()}

    async def on_finish(self, job: Job) -> None:
        events = job.intake.get("events")
        if events is None or "completed" in events:
            await self.send_callback(job, lambda done: self.prediction(done, done.origin), self.signed_headers)

    # -- what to tell clients -----------------------------------------------------------------
    def hints(self, base_url: str) -> dict[str, Any]:
        return self.bearer_hints(base_url, "REPLICATE_API_TOKEN", UPSTREAM, "v1/models/kwaivgi/kling-o1/predictions",
                                 webhook_secret=f"GET {base_url}/v1/webhooks/default/secret")

    def hint_line(self, base_url: str) -> str:
        return self.bearer_hint_line(base_url, "REPLICATE_API_TOKEN", UPSTREAM, "v1/...")
