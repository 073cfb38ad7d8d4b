"""The emulator's file store: uploads (single and multipart) and rendered results.

Every stored file lives at ``<root>/files/<key>/<name>``; a host serves it under its own URL
(fal: ``/fal/cdn/files/<key>/<name>``). Keys are random (uploads) or derived from the render
(results, so the same request names the same file). Bodies are streamed to disk under a byte
cap and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from kling_core.files import atomic_open, write_text_atomic

_KEY = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class TooLarge(Exception):
    pass


class NotFound(Exception):
    pass


def safe_name(name: str | None, default: str = "upload.bin") -> str:
    """A file name with nothing but letters, digits, '.', '_' and '-' (no folders, no dot files)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._")[:120]
    return base or default


def valid_key(key: str) -> bool:
    return bool(_KEY.match(key))


class Storage:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "multipart").mkdir(parents=True, exist_ok=True)

    # -- files ---------------------------------------------------------------------------
    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")

    def path(self, key: str, name: str) -> Path | None:
        """The stored file's path, or None for a key or name that is not one of ours."""
        if not valid_key(key) or safe_name(name) != name:
            return None
        return self.root / "files" / key / name

    def find(self, key: str, name: str) -> Path | None:
        path = self.path(key, name)
        return path if path is not None and path.is_file() else None

    async def save_stream(self, key: str, name: str, chunks: AsyncIterator[bytes]) -> int:
        """Write a body to ``key/name``; raise TooLarge past the cap (nothing is kept)."""
        dest = self.path(key, name)
        if dest is None:
            raise NotFound(f"{key}/{name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with atomic_open(dest) as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(f"more than {self.max_bytes} bytes")
                out.write(chunk)
        return size

    # -- multipart -----------------------------------------------------------------------
    def start_multipart(self, name: str, content_type: str) -> tuple[str, str]:
        """(key, upload id) of a new multipart upload of ``name``."""
        key, upload_id = self.new_key(), secrets.token_hex(12)
        folder = self.root / "multipart" / upload_id
        folder.mkdir(parents=True)
        write_text_atomic(folder / "upload.json", json.dumps({"key": key, "name": name, "content_type": content_type}))
        return key, upload_id

    def multipart(self, key: str, name: str, upload_id: str) -> Path | None:
        """The upload's folder when ``upload_id`` is an open upload of ``key/name``."""
        if not _UPLOAD_ID.match(upload_id):
            return None
        folder = self.root / "multipart" / upload_id
        try:
            meta = json.loads((folder / "upload.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return folder if meta.get("key") == key and meta.get("name") == name else None

    def _parts_size(self, folder: Path, skip: int) -> int:
        return sum(p.stat().st_size for p in folder.glob("part-*") if p.name != f"part-{skip:05d}")

    async def save_part(self, folder: Path, number: int, chunks: AsyncIterator[bytes]) -> str:
        """Store one part; return its ETag (the MD5 of the part, quoted, as S3 does)."""
        import hashlib

        budget = self.max_bytes - self._parts_size(folder, number)
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with atomic_open(folder / f"part-{number:05d}") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > budget:
                    raise TooLarge(f"the upload would pass {self.max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
        etag = f'"{digest.hexdigest()}"'
        (folder / f"part-{number:05d}.etag").write_text(etag, "utf-8")
        return etag

    def complete(self, folder: Path, key: str, name: str, parts: list[tuple[int, str]]) -> int:
        """Join the named parts in order into ``key/name``; ValueError names a part that does not match."""
        # fal-client lists parts as its parallel uploads finish, not in order: sort them.
        parts = sorted(parts)
        numbers = [n for n, _ in parts]
        if not parts or len(numbers) != len(set(numbers)):
            raise ValueError("parts must be listed once each")
        for number, etag in parts:
            stored = folder / f"part-{number:05d}.etag"
            if not stored.is_file() or stored.read_text("utf-8").strip('"') != etag.strip('"'):
                raise ValueError(f"part {number} was not uploaded with ETag {etag}")
        dest = self.path(key, name)
        if dest is None:
            raise NotFound(f"{key}/{name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(dest) as out:
            for number, _ in parts:
                with (folder / f"part-{number:05d}").open("rb") as src:
                    shutil.copyfileobj(src, out)
        size = dest.stat().st_size
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
        return size
