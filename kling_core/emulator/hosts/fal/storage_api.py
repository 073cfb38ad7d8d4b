"""fal storage as fal-client 1.0.3 and our plugin use it (providers.md §1.8, §8).

- ``POST {rest}/storage/auth/token?storage_type=fal-cdn-v3`` (fal key) -> ``{token, token_type,
  base_url, expires_at}``; the token is an HMAC of its expiry, so it outlives a restart with
  ``--state``;
- ``POST {cdn}/files/upload`` (``Authorization: Bearer <token>``, ``X-Fal-File-Name``, raw
  bytes) -> ``{"access_url"}``;
- multipart: ``POST {cdn}/files/upload/multipart`` -> ``{access_url, uploadId}``; ``PUT
  {access_url}/multipart/{uploadId}/{n}`` -> ``ETag``; ``POST {access_url}/multipart/{uploadId}/complete``
  with ``{"parts": [{"partNumber", "etag"}]}`` -> ``{"access_url"}``;
- fal-client's fallback repository: ``POST {rest}/storage/upload/initiate`` -> ``{upload_url,
  file_url}`` and a ``PUT`` of the bytes to the signed ``upload_url``;
- files are public: ``GET``/``HEAD {cdn}/files/<key>/<name>`` (ranges supported).

Here ``{rest}`` is ``/fal/rest`` and ``{cdn}`` is ``/fal/cdn`` on the emulator.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import mimetypes
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from kling_core.asgi_body import BodyTooLarge, limited_body
from kling_core.emulator.hosts.base import BadJson, read_json
from kling_core.emulator.storage import NotFound, TooLarge, safe_name

if TYPE_CHECKING:
    from kling_core.emulator.hosts.fal import FalHost

TOKEN_SECONDS = 3600
MAX_PART = 100 * 1024 * 1024


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=headers)


UNAUTHORIZED = {"detail": "Unauthorized"}
NOT_FOUND = {"detail": "Not Found"}
TOO_LARGE = {"detail": "File too large"}


async def _json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, or the answer to a body too large (413) or not JSON (400)."""
    try:
        return await read_json(request, limit)
    except BodyTooLarge:
        return _json(TOO_LARGE, 413)
    except BadJson as exc:
        return _json({"detail": f"Invalid JSON: {exc.message}"}, 400)


class StorageApi:
    def __init__(self, host: FalHost) -> None:
        self.host = host
        self.storage = host.engine.storage
        self.secret = host.ctx.secret

    # -- tokens ------------------------------------------------------------------------------
    def _sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()[:32]

    def make_token(self, now: float | None = None) -> tuple[str, float]:
        expires = int((now or time.time()) + TOKEN_SECONDS)
        return f"cdn{expires}.{self._sign(f'cdn-token:{expires}')}", expires

    def token_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.startswith("cdn"):
            return False
        expires, _, sig = token[3:].partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(sig, self._sign(f"cdn-token:{expires}"))

    async def token(self, request: Request) -> Response:
        refused = self.host.authorise(request)
        if refused is not None:
            return refused
        with contextlib.suppress(BodyTooLarge, BadJson):
            await read_json(request, 64 * 1024)  # fal-client sends {}; the content is not used
        token, expires = self.make_token()
        return _json({"token": token, "token_type": "Bearer", "base_url": f"{self.host.base(request)}/cdn",
                      "expires_at": dt.datetime.fromtimestamp(expires, dt.UTC).isoformat()})

    # -- single uploads ----------------------------------------------------------------------
    def _access_url(self, request: Request, key: str, name: str) -> str:
        return f"{self.host.base(request)}/cdn/files/{key}/{name}"

    async def _store(self, request: Request, key: str, name: str) -> Response | None:
        try:
            size = await self.storage.save_stream(key, name, limited_body(request, self.storage.max_bytes))
        except (BodyTooLarge, TooLarge):
            return _json(TOO_LARGE, 413)
        except NotFound:
            return _json(NOT_FOUND, 404)
        self.host.note(request, f"stored {key}/{name} ({size} bytes)")
        return None

    async def upload(self, request: Request) -> Response:
        if not self.token_ok(request):
            self.host.note(request, "bad storage token")
            return _json(UNAUTHORIZED, 401)
        name = safe_name(request.headers.get("x-fal-file-name"), _default_name(request))
        key = self.storage.new_key()
        failed = await self._store(request, key, name)
        return failed or _json({"access_url": self._access_url(request, key, name)})

    # -- multipart ---------------------------------------------------------------------------
    async def multipart_start(self, request: Request) -> Response:
        if not self.token_ok(request):
            return _json(UNAUTHORIZED, 401)
        name = safe_name(request.headers.get("x-fal-file-name"), _default_name(request))
        key, upload_id = self.storage.start_multipart(name, request.headers.get("content-type", ""))
        return _json({"access_url": self._access_url(request, key, name), "uploadId": upload_id})

    async def multipart_part(self, request: Request, key: str, name: str, upload_id: str, number: str) -> Response:
        if not self.token_ok(request):
            return _json(UNAUTHORIZED, 401)
        folder = self.storage.multipart(key, name, upload_id)
        if folder is None or not number.isdigit() or not 1 <= int(number) <= 10_000:
            return _json(NOT_FOUND, 404)
        try:
            etag = await self.storage.save_part(folder, int(number), limited_body(request, MAX_PART))
        except (BodyTooLarge, TooLarge):
            return _json(TOO_LARGE, 413)
        return Response(status_code=200, headers={"etag": etag})

    async def multipart_complete(self, request: Request, key: str, name: str, upload_id: str) -> Response:
        if not self.token_ok(request):
            return _json(UNAUTHORIZED, 401)
        folder = self.storage.multipart(key, name, upload_id)
        if folder is None:
            return _json(NOT_FOUND, 404)
        body = await _json_body(request, 1024 * 1024)
        if isinstance(body, Response):
            return body
        parts = body.get("parts") if isinstance(body, dict) else None
        if not isinstance(parts, list) or not all(
                isinstance(p, dict) and isinstance(p.get("partNumber"), int) and not isinstance(p["partNumber"], bool)
                and isinstance(p.get("etag"), str) for p in parts):
            return _json({"detail": "parts must be a list of {partNumber, etag}"}, 400)
        try:
            size = self.storage.complete(folder, key, name, [(p["partNumber"], p["etag"]) for p in parts])
        except ValueError as exc:
            return _json({"detail": str(exc)}, 400)
        except TooLarge:
            return _json(TOO_LARGE, 413)
        self.host.note(request, f"stored {key}/{name} ({size} bytes, {len(parts)} parts)")
        return _json({"access_url": self._access_url(request, key, name)})

    # -- fal-client's fallback repository ----------------------------------------------------
    async def initiate(self, request: Request) -> Response:
        refused = self.host.authorise(request)
        if refused is not None:
            return refused
        body = await _json_body(request, 64 * 1024)
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict):
            body = {}
        name = safe_name(body.get("file_name") if isinstance(body.get("file_name"), str) else None)
        key = self.storage.new_key()
        expires = int(time.time() + TOKEN_SECONDS)
        sig = self._sign(f"put:{key}/{name}:{expires}")
        base = self.host.base(request)
        return _json({"upload_url": f"{base}/cdn/upload/{key}/{name}?expires={expires}&signature={sig}",
                      "file_url": f"{base}/cdn/files/{key}/{name}"})

    async def signed_put(self, request: Request, key: str, name: str) -> Response:
        expires = request.query_params.get("expires", "")
        sig = request.query_params.get("signature", "")
        if not expires.isdigit() or int(expires) < time.time() or \
                not hmac.compare_digest(sig, self._sign(f"put:{key}/{name}:{expires}")):
            return _json({"detail": "Invalid or expired upload URL"}, 403)
        return await self._store(request, key, name) or Response(status_code=200)

    # -- serving -----------------------------------------------------------------------------
    async def file(self, request: Request, key: str, name: str) -> Response:
        path = self.storage.find(key, name)
        if path is None:
            return _json(NOT_FOUND, 404)
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, filename=None)


def _default_name(request: Request) -> str:
    ext = mimetypes.guess_extension((request.headers.get("content-type") or "").split(";")[0].strip()) or ".bin"
    return f"upload{ext}"
