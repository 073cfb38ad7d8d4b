"""Where rendered and downloaded media live when the config names no folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kling_core.settings import MediaSettings


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$KLING_CACHE_DIR``, else ``$XDG_CACHE_HOME/kling``, else ``~/.cache/kling``."""
    env = os.environ if environ is None else environ
    if env.get("KLING_CACHE_DIR"):
        return Path(env["KLING_CACHE_DIR"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "kling"
    return Path.home() / ".cache" / "kling"


def work_dir(
    explicit: Path | None, media: MediaSettings, sub: str, environ: Mapping[str, str] | None = None
) -> Path:
    """The first of: an explicit folder, ``media.work_dir``, the cache folder + ``sub``."""
    if explicit is not None:
        return Path(explicit)
    if media.work_dir:
        return Path(media.work_dir).expanduser()
    return cache_dir(environ) / sub
