"""fal.ai on the emulator, under ``/fal``.

============================================  =====================================================
``POST   /fal/<model id>[?fal_webhook=URL]``  queue submit (``queue.fal.run/<model id>``)
``GET    /fal/<owner>/<app>/requests/<id>/status[?logs=1]``  status
``GET    /fal/<owner>/<app>/requests/<id>/status/stream[?logs=1]``  status stream (server-sent events)
``GET    /fal/<owner>/<app>/requests/<id>``   result
``PUT    /fal/<owner>/<app>/requests/<id>/cancel``  cancel
``POST   /fal/run/<model id>``                synchronous run (``fal.run/<model id>``)
``POST   /fal/rest/storage/auth/token``       storage token (``rest.fal.ai``)
``POST   /fal/rest/storage/upload/initiate``  fallback upload (signed PUT URL)
``GET    /fal/rest/.well-known/jwks.json``    webhook signing keys (also ``/fal/.well-known/jwks.json``)
``POST   /fal/cdn/files/upload[/multipart]``  uploads (``v3.fal.media``)
``GET    /fal/cdn/files/<key>/<name>``        stored files and results
============================================  =====================================================

The first path segments ``run``, ``rest``, ``cdn`` and ``.well-known`` are taken by these
routes, so a fal app owner of that name cannot be emulated.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kling_core.emulator.hosts.base import Host, HostContext
from kling_core.emulator.hosts.fal import wire
from kling_core.emulator.hosts.fal.queue import Queue, user_id
from kling_core.emulator.hosts.fal.storage_api import StorageApi

_MODEL_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


class FalHost(Host):
    name: ClassVar[str] = "fal"

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(ctx)
        self.queue = Queue(self)
        self.files = StorageApi(self)
        self.engine.on_finish("fal", self.queue.on_finish)

    # -- shared helpers ---------------------------------------------------------------------
    def authorise(self, request: Request) -> Response | None:
        """None for a well-formed ``Authorization: Key <key>`` (one of the configured keys, if any)."""
        if self.key_refusal(request, "Key") is None:
            return None
        return JSONResponse({"detail": "Unauthorized"}, status_code=401)

    @staticmethod
    def user_of(request: Request) -> str:
        _, _, key = request.headers.get("authorization", "").strip().partition(" ")
        return user_id(key.strip())

    # -- routing ------------------------------------------------------------------------------
    def disconnected(self, request: Request) -> Response:
        return JSONResponse(wire.request_error("Client disconnected", "client_disconnected"), 499)

    def internal_error(self, request: Request) -> Response:
        return JSONResponse(wire.request_error("Internal server error", "internal_error"), 500,
                            headers={"x-fal-error-type": "internal_error"})

    def method_not_allowed(self, request: Request, allowed: str) -> Response:
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"allow": allowed})

    async def dispatch(self, request: Request) -> Response:
        method = request.method
        segments = self.segments(request)
        if not segments:
            return self._not_found(request)
        head = segments[0]
        if method == "HEAD" and head == "cdn":
            method = "GET"
        if head == "run":
            model_id = "/".join(segments[1:])
            return await self._only(request, "POST", lambda: self.queue.run(request, model_id)) \
                if self._model_id_ok(model_id) else self._not_found(request)
        if head == ".well-known" and segments[1:] == ["jwks.json"]:
            return await self._only(request, "GET", self._jwks)
        if head == "rest":
            return await self._rest(request, method, segments[1:])
        if head == "cdn":
            return await self._cdn(request, method, segments[1:])
        if "requests" in segments:
            i = segments.index("requests")
            app_id, tail = "/".join(segments[:i]), segments[i + 1:]
            if i < 2 or not tail:
                return self._not_found(request)
            request_id, tail = tail[0], tail[1:]
            if tail == []:
                return await self._only(request, "GET", lambda: self.queue.result(request, app_id, request_id))
            if tail == ["status"]:
                return await self._only(request, "GET", lambda: self.queue.status(request, app_id, request_id))
            if tail == ["status", "stream"]:
                return await self._only(request, "GET", lambda: self.queue.status_stream(request, app_id, request_id))
            if tail == ["cancel"]:
                return await self._only(request, "PUT", lambda: self.queue.cancel(request, app_id, request_id))
            return self._not_found(request)
        model_id = "/".join(segments)
        if model_id in wire.ENDPOINTS:
            return await self._only(request, "POST", lambda: self.queue.submit(request, model_id))
        if method == "POST" and len(segments) >= 2 and self._model_id_ok(model_id):
            return await self.queue.submit(request, model_id)  # authorised first, then 404 for the model
        return self._not_found(request)

    @staticmethod
    def _model_id_ok(model_id: str) -> bool:
        return 0 < len(model_id) <= 200 and set(model_id) <= _MODEL_ID_CHARS and ".." not in model_id

    async def _rest(self, request: Request, method: str, segments: list[str]) -> Response:
        if segments == ["storage", "auth", "token"]:
            return await self._only(request, "POST", lambda: self.files.token(request), method)
        if segments == ["storage", "upload", "initiate"]:
            return await self._only(request, "POST", lambda: self.files.initiate(request), method)
        if segments == [".well-known", "jwks.json"]:
            return await self._only(request, "GET", self._jwks, method)
        return self._not_found(request)

    async def _cdn(self, request: Request, method: str, s: list[str]) -> Response:
        f = self.files
        if s == ["files", "upload"]:
            return await self._only(request, "POST", lambda: f.upload(request), method)
        if s == ["files", "upload", "multipart"]:
            return await self._only(request, "POST", lambda: f.multipart_start(request), method)
        if len(s) == 3 and s[0] == "files":
            return await self._only(request, "GET", lambda: f.file(request, s[1], s[2]), method)
        if len(s) == 6 and s[0] == "files" and s[3] == "multipart" and s[5] == "complete":
            return await self._only(request, "POST", lambda: f.multipart_complete(request, s[1], s[2], s[4]), method)
        if len(s) == 6 and s[0] == "files" and s[3] == "multipart":
            return await self._only(request, "PUT", lambda: f.multipart_part(request, s[1], s[2], s[4], s[5]), method)
        if len(s) == 3 and s[0] == "upload":
            return await self._only(request, "PUT", lambda: f.signed_put(request, s[1], s[2]), method)
        return self._not_found(request)

    async def _jwks(self) -> Response:
        return JSONResponse(self.ctx.signer.jwks())

    async def _only(self, request: Request, allowed: str, handler: Any, method: str | None = None) -> Response:
        return await self.only(request, method or request.method, allowed, handler)

    def _not_found(self, request: Request) -> Response:
        self.note(request, "unknown path")
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    # -- what to tell clients --------------------------------------------------------------
    def hints(self, base_url: str) -> dict[str, Any]:
        hostport = base_url.split("://", 1)[1]
        https = base_url.startswith("https://")
        out: dict[str, Any] = {
            "base_url": base_url,
            "kling_config": {"providers.fal.base_url": base_url,
                             "providers.fal.options.storage_url": f"{base_url}/rest",
                             "providers.fal.options.cdn_url": f"{base_url}/cdn",
                             "media.allow_private_urls": True},
            "fal_client_env": {"FAL_QUEUE_RUN_HOST": hostport, "FAL_RUN_HOST": f"{hostport}/run",
                               "FAL_KEY": "any-key"},
            "fal_client_constants": {"fal_client.client.REST_URL": f"{base_url}/rest",
                                     "fal_client.client.CDN_URL": f"{base_url}/cdn"},
            "jwks_url": f"{base_url}/rest/.well-known/jwks.json",
        }
        if https and self.ctx.ca_file is not None:
            out["fal_client_env"]["SSL_CERT_FILE"] = str(self.ctx.ca_file)
        elif not https:
            out["fal_client_note"] = "fal-client speaks only https: run with --tls"
        return out

    def hint_line(self, base_url: str) -> str:
        h = self.hints(base_url)
        env = " ".join(f"{k}={v}" for k, v in h["fal_client_env"].items())
        client = (f"fal-client: {env} (uploads: set fal_client.client.REST_URL={base_url}/rest and "
                  f"CDN_URL={base_url}/cdn)")
        if "fal_client_note" in h:
            client = f"{client}; {h['fal_client_note']}"
        return (f"fal  {base_url}  kling: [providers.fal] base_url = \"{base_url}\", "
                f"[providers.fal.options] storage_url = \"{base_url}/rest\", cdn_url = \"{base_url}/cdn\", "
                f"[media] allow_private_urls = true; "
                f"{client}")
