"""Uploads of local files to fal storage (the CDN fal's models read inputs from).

Protocol per providers.md §1.8 and §8 (fal-client 1.0.3 ``upload_file``): a short-lived storage
token from ``POST https://rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3`` (fal key),
then one ``POST https://v3.fal.media/files/upload`` with the raw bytes (fal-client's fixed
``CDN_URL``, whatever ``base_url`` the token names), or above 100 MiB a multipart upload in
10 MiB parts under the token's ``base_url``; each part is PUT with the file's MIME type and
``Accept-Encoding: identity`` (fal-client: "to ensure we get ETag headers"). Files are
streamed from disk; the storage token is redacted like a key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from kling_core.sdk import (
    FileChunks,
    ProtocolError,
    UnsafeMediaError,
    content_type,
    register_secret,
    try_json,
)

if TYPE_CHECKING:
    from kling_core_plugins.fal.provider import FalProvider

STORAGE_API = "https://rest.fal.ai"
CDN_URL = "https://v3.fal.media"  # fal-client's single-upload host; option cdn_url overrides it
TOKEN_PATH = "/storage/auth/token"
TOKEN_PARAMS = {"storage_type": "fal-cdn-v3"}
MULTIPART_THRESHOLD = 100 * 1024 * 1024
PART_SIZE = 10 * 1024 * 1024
class FalStorage:
    """One upload session: the token is fetched once and reused for every file."""

    def __init__(self, provider: FalProvider) -> None:
        self.provider = provider
        self._auth: tuple[str, str] | None = None  # (authorization value, upload base URL)

    @property
    def api(self) -> str:
        return str(self.provider.ctx.settings.options.get("storage_url") or STORAGE_API).rstrip("/")

    @property
    def cdn(self) -> str:
        cdn = str(self.provider.ctx.settings.options.get("cdn_url") or CDN_URL).rstrip("/")
        self._check_host_url(cdn)
        return cdn

    def _field(self, doc: Mapping[str, Any], key: str, response: httpx.Response) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise ProtocolError(f"fal storage response lacks {key}", provider="fal", status_code=response.status_code)
        return value

    def _check_host_url(self, url: str) -> None:
        u = httpx.URL(url)
        if u.scheme != "https" and not self.provider.ctx.media.allow_private_urls:
            raise ProtocolError(f"fal storage named a non-https upload URL ({u.scheme})", provider="fal")

    async def _token(self) -> tuple[str, str]:
        if self._auth is None:
            p = self.provider
            req = p.make_request("POST", self.api + TOKEN_PATH, params=TOKEN_PARAMS, json_body={})
            response = await p.send_get(req, phase="result")
            doc = p.json_object(response)
            token = self._field(doc, "token", response)
            register_secret(token)
            token_type = doc.get("token_type") if isinstance(doc.get("token_type"), str) else "Bearer"
            base = self._field(doc, "base_url", response).rstrip("/")
            self._check_host_url(base)
            self._auth = (f"{token_type} {token}", base)
        return self._auth

    async def upload(self, path: Path, mime: str | None = None, /) -> str:
        """Upload one local file; return its public URL (fal's MIME table decides the type)."""
        if not path.is_file():
            raise UnsafeMediaError(f"not a regular file: {path}")
        size = path.stat().st_size
        auth, base = await self._token()
        # A header value is printable ASCII: a name with anything else (café.mp4, bytes that are
        # not UTF-8) goes percent-encoded (as fal-client, an ASCII name goes as it is).
        name = path.name
        if not (name.isascii() and name.isprintable()):
            name = quote(os.fsencode(name), safe="")
        headers = {"authorization": auth, "content-type": content_type(path), "x-fal-file-name": name}
        if size > MULTIPART_THRESHOLD:
            return await self._multipart(path, size, base, headers)
        p = self.provider
        req = p.make_request(
            "POST", f"{self.cdn}/files/upload", auth=False, content=FileChunks(path),
            headers={**headers, "content-length": str(size)},
        )
        response = await p.send_get(req, phase="result")
        return self._access_url(response)

    def _access_url(self, response: httpx.Response) -> str:
        doc = try_json(response)
        if not isinstance(doc, Mapping):
            raise ProtocolError("fal storage answered without a JSON object", provider="fal",
                                status_code=response.status_code)
        return self._field(doc, "access_url", response)

    async def _multipart(self, path: Path, size: int, base: str, headers: dict[str, str]) -> str:
        p = self.provider
        start = p.make_request("POST", f"{base}/files/upload/multipart", auth=False, headers=headers)
        response = await p.send_get(start, phase="result")
        doc = p.json_object(response)
        access_url = self._field(doc, "access_url", response).rstrip("/")
        upload_id = self._field(doc, "uploadId", response)
        self._check_host_url(access_url)
        parts = []
        # As fal-client's upload_part: the file's own type, and no compression ("to ensure we get ETag headers").
        part_headers = {"authorization": headers["authorization"], "content-type": headers["content-type"],
                        "accept-encoding": "identity"}
        for number, offset in enumerate(range(0, size, PART_SIZE), start=1):
            length = min(PART_SIZE, size - offset)
            req = p.make_request(
                "PUT", f"{access_url}/multipart/{upload_id}/{number}", auth=False,
                content=FileChunks(path, offset, length),
                headers={**part_headers, "content-length": str(length)},
            )
            part = await p.send_get(req, phase="result")
            etag = part.headers.get("etag")
            if not etag:
                raise ProtocolError(f"fal storage gave no ETag for part {number}", provider="fal")
            parts.append({"partNumber": number, "etag": etag})
        done = p.make_request(
            "POST", f"{access_url}/multipart/{upload_id}/complete", auth=False,
            headers={"authorization": headers["authorization"]}, json_body={"parts": parts},
        )
        response = await p.send_get(done, phase="result")
        doc = try_json(response)
        if isinstance(doc, Mapping) and isinstance(doc.get("access_url"), str):
            return str(doc["access_url"])
        return access_url

