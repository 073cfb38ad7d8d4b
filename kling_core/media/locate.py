"""Which ffmpeg binary to run: config, then ``$KLING_FFMPEG``, then the imageio-ffmpeg one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kling_core.errors import ConfigError
from kling_core.settings import MediaSettings

ENV_VAR = "KLING_FFMPEG"


def find_ffmpeg(settings: MediaSettings | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Absolute path of the ffmpeg executable to use.

    A path named by config or the environment must exist: silently falling back to another
    ffmpeg would hide a typo and run a binary the user did not choose.
    """
    env = os.environ if environ is None else environ
    if settings is not None and settings.ffmpeg:
        return _checked(settings.ffmpeg, "media.ffmpeg")
    from_env = env.get(ENV_VAR, "").strip()
    if from_env:
        return _checked(from_env, ENV_VAR)
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # imageio-ffmpeg raises RuntimeError when it has no binary
        raise ConfigError(
            f"no ffmpeg found ({exc}); set media.ffmpeg in kling.toml or ${ENV_VAR}", key="media.ffmpeg"
        ) from None
    return str(exe)


def _checked(value: str, key: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"ffmpeg not found at {path}", key=key)
    if not os.access(path, os.X_OK):
        raise ConfigError(f"{path} is not executable", key=key)
    return str(path.resolve())
