"""Which ffmpeg binary to run: config, then ``$KLING_FFMPEG``, then the imageio-ffmpeg one."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

from kling_core.errors import ConfigError
from kling_core.settings import MediaSettings

ENV_VAR = "KLING_FFMPEG"
# `ffmpeg -version` answers in milliseconds; a binary that hangs is not one we can use.
VERSION_TIMEOUT = 10.0

# Binaries proven to run, by (path, mtime, size): a process checks each one once.
_proven: set[tuple[str, int, int]] = set()
_proven_lock = threading.Lock()


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


def require_ffmpeg(media: MediaSettings, environ: Mapping[str, str] | None = None) -> str:
    """The ffmpeg :func:`find_ffmpeg` picks, proven runnable: ``ffmpeg -version`` answers in time.

    Called before anything is paid for (and by ``kling config check``), so a missing or broken
    binary is a ConfigError naming ``media.ffmpeg`` (or ``$KLING_FFMPEG`` when that chose it)
    and the reason, not a failed job later. A binary that passed is not run again in this
    process until it changes.
    """
    env = os.environ if environ is None else environ
    key = "media.ffmpeg" if media.ffmpeg or not env.get(ENV_VAR, "").strip() else ENV_VAR
    exe = find_ffmpeg(media, env)
    try:
        st = os.stat(exe)
    except OSError as exc:
        raise ConfigError(f"ffmpeg at {exe} cannot be read: {exc.strerror or exc}", key=key) from None
    stamp = (exe, st.st_mtime_ns, st.st_size)
    with _proven_lock:
        if stamp in _proven:
            return exe
    _run_version(exe, key)
    with _proven_lock:
        _proven.add(stamp)
    return exe


def _run_version(exe: str, key: str) -> None:
    argv = [exe, "-nostdin", "-hide_banner", "-version"]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=VERSION_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:  # run() has killed and reaped the child
        raise ConfigError(f"{exe} did not answer `-version` within {VERSION_TIMEOUT:g} s", key=key) from None
    except OSError as exc:  # not a program this system can run (format, permission)
        raise ConfigError(f"{exe} cannot be run: {exc.strerror or exc}", key=key) from None
    if proc.returncode != 0:
        raise ConfigError(f"{exe} -version failed (exit code {proc.returncode})", key=key)
    if not proc.stdout.lstrip().startswith(b"ffmpeg version"):
        raise ConfigError(f"{exe} does not look like ffmpeg (`-version` does not say 'ffmpeg version')", key=key)


def _checked(value: str, key: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"ffmpeg not found at {path}", key=key)
    if not os.access(path, os.X_OK):
        raise ConfigError(f"{path} is not executable", key=key)
    return str(path.resolve())
