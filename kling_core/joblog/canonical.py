"""The canonical form of a request, and the client key derived from it.

A job's identity is what the host would render: the provider, the model and the request's
fields with every local file named by the SHA-256 of its content (URLs as given), options
included. Excluded: the client key itself and the webhook URL (where the host reports back
does not change the video; re-running with another ``--webhook`` picks up the same job).
The same command run again therefore derives the same key, and ``take`` tells repeated
jobs of one command apart (``<base>-1``, ``<base>-2``, ...).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import attrs

from kling_core.contract.checks import local_path
from kling_core.contract.models import EditRequest
from kling_core.serialization import unstructure

CHUNK = 1024 * 1024
# Digests of local files this process already read, by (path, size, mtime): a re-check of the
# same request (the CLI plans, then submits) reads each file once.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


@attrs.frozen
class Canonical:
    """A request as the log stores it, and the digests that identify it."""

    document: dict[str, Any]  # the request; local media as absolute paths
    media: dict[str, str]  # field path -> sha256 of each local file
    identity: str  # sha256 of provider, model and request (local media by digest; no key, no webhook)
    request_sha256: str  # the same with the webhook: what an explicit --client-key must match

    def stored(self) -> dict[str, Any]:
        return {"request": self.document, "media_sha256": self.media}


def _media_ref(ref: str) -> tuple[str, Path | None]:
    path = local_path(ref)
    if path is None:
        return ref, None
    absolute = path.expanduser().absolute()
    return str(absolute), absolute


def json_digest(doc: Any) -> str:
    """The SHA-256 of ``doc`` as compact JSON with sorted keys (one spelling per document)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def canonical(request: EditRequest, provider: str) -> Canonical:
    """Hash every local file of ``request`` (missing or unreadable files are the checks' business)."""
    media: dict[str, str] = {}
    by_ref: dict[str, str] = {}  # local ref -> "sha256:<hex>" for the identity
    absolute: dict[str, str] = {}  # local ref -> its absolute path, where that differs

    for field_path, ref in request.media():
        shown, path = _media_ref(ref)
        if shown != ref:
            absolute[ref] = shown
        if path is None or not path.is_file():
            continue
        try:
            digest = file_sha256(path)
        except OSError:  # unreadable: the request checks report it; the path stands in
            continue
        media[field_path] = digest
        by_ref[ref] = f"sha256:{digest}"

    document = unstructure(request.map_media(lambda r: absolute.get(r, r)) if absolute else request)
    document.pop("client_key", None)
    if by_ref or absolute:
        full = unstructure(request.map_media(lambda r: by_ref.get(r, r)) if by_ref else request)
        full.pop("client_key", None)
    else:  # every reference a URL (hosted providers' usual case): the same document, read only
        full = document
    request_sha = json_digest({"provider": provider, "request": full})
    ident = {k: v for k, v in full.items() if k != "webhook_url"}
    identity = json_digest({"provider": provider, "model": request.model, "request": ident})
    return Canonical(document=document, media=media, identity=identity, request_sha256=request_sha)


def base_key(identity: str, salt: str) -> str:
    """The key prefix of every take of one command: 20 hex digits, unique per state dir."""
    return hashlib.sha256(f"{salt}:{identity}".encode()).hexdigest()[:20]


def take_key(base: str, take: int) -> str:
    return f"{base}-{take}"
