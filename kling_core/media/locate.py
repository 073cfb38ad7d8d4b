"""Which ffmpeg binary to run: config, then ``$KLING_FFMPEG``, then the imageio-ffmpeg one.

Proving a binary runs (``ffmpeg -version``) costs a process start, and imageio-ffmpeg runs
its binary's ``-version`` in every process that asks it for the path. What
:func:`require_ffmpeg` proved is remembered in ``ffmpeg-checked.json`` in the cache folder, by
the binary's path, device, inode, size, mtime and ctime (ctime moves on every write, rename
over or ``chmod``, and cannot be set back): a later process trusts a proof only while all of
these still match, and runs ``-version`` again otherwise. A proven binary in imageio-ffmpeg's
own folder is also found without asking imageio-ffmpeg (it is the one it picks first).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kling_core.errors import ConfigError
from kling_core.media.stamp import Stamp, file_stamp
from kling_core.media.workdir import cache_dir
from kling_core.settings import MediaSettings

ENV_VAR = "KLING_FFMPEG"
IMAGEIO_ENV_VAR = "IMAGEIO_FFMPEG_EXE"  # imageio-ffmpeg's own override: its lookup is then not ours to skip
# `ffmpeg -version` answers in milliseconds; a binary that hangs is not one we can use.
VERSION_TIMEOUT = 10.0
MEMO_FILE = "ffmpeg-checked.json"
MEMO_KEEP = 8  # binaries remembered; older ones are checked again if they come back

# Binaries proven to run in this process, by stamp.
_proven: set[Stamp] = set()
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
    remembered = None if env.get(IMAGEIO_ENV_VAR) else _remembered_bundled(env)
    if remembered is not None:
        return remembered
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
    and the reason, not a failed job later. A binary that passed is not run again until it
    changes: not in this process, nor in later ones (see the module doc).
    """
    env = os.environ if environ is None else environ
    key = "media.ffmpeg" if media.ffmpeg or not env.get(ENV_VAR, "").strip() else ENV_VAR
    exe = find_ffmpeg(media, env)
    try:
        st = os.stat(exe)
    except OSError as exc:
        raise ConfigError(f"ffmpeg at {exe} cannot be read: {exc.strerror or exc}", key=key) from None
    stamp = file_stamp(exe, st)
    with _proven_lock:
        if stamp in _proven:
            return exe
    if _entry(_load_memo(env), stamp) is not None:
        with _proven_lock:
            _proven.add(stamp)
        return exe
    _run_version(exe, key)
    _prove(stamp, env, bundled=_bundled_folder(exe) is not None)
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


# -- what earlier processes proved ---------------------------------------------------------


def _stamp(exe: str) -> Stamp | None:
    try:
        return file_stamp(exe, os.stat(exe))
    except OSError:
        return None


def _bundled_folder(exe: str) -> Path | None:
    """imageio-ffmpeg's ``binaries`` folder when ``exe`` is the binary shipped in it, else None.

    Found without importing imageio-ffmpeg. Only a binary in that folder is taken from the
    memo without asking imageio-ffmpeg: it is the one imageio-ffmpeg picks first, so the memo
    cannot point the lookup at any other program.
    """
    try:
        spec = importlib.util.find_spec("imageio_ffmpeg")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(exe)
    for location in spec.submodule_search_locations:
        folder = Path(location) / "binaries"
        if path.parent == folder and path.name.startswith("ffmpeg"):
            return folder
    return None


def _memo_path(env: Mapping[str, str]) -> Path:
    return cache_dir(env) / MEMO_FILE


def _load_memo(env: Mapping[str, str]) -> list[dict[str, Any]]:
    try:
        doc = json.loads(_memo_path(env).read_bytes())
    except (OSError, ValueError, RuntimeError):  # none yet, unreadable or damaged: nothing known
        return []
    entries = doc.get("proven") if isinstance(doc, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _entry(entries: list[dict[str, Any]], stamp: Stamp) -> dict[str, Any] | None:
    for entry in entries:
        if entry.get("stamp") == list(stamp):
            return entry
    return None


def _remembered_bundled(env: Mapping[str, str]) -> str | None:
    """The bundled binary an earlier lookup proved, if it is still exactly that file."""
    for entry in _load_memo(env):
        stamp = entry.get("stamp")
        if not entry.get("bundled") or not isinstance(stamp, list) or not stamp or not isinstance(stamp[0], str):
            continue
        exe = stamp[0]
        current = _stamp(exe)
        if current is not None and list(current) == stamp and _bundled_folder(exe) is not None:
            with _proven_lock:
                _proven.add(current)
            return exe
    return None


def _prove(stamp: Stamp, env: Mapping[str, str], *, bundled: bool) -> None:
    """Remember ``stamp`` as proven, here and in the memo file (best effort: it is a cache)."""
    with _proven_lock:
        _proven.add(stamp)
    entries = _load_memo(env)
    if _entry(entries, stamp) is not None:
        return
    kept = [e for e in entries if isinstance(e.get("stamp"), list) and e["stamp"][:1] != [stamp[0]]]
    kept = [{"stamp": list(stamp), "bundled": bundled}, *kept][:MEMO_KEEP]
    from kling_core.files import write_text_atomic

    with contextlib.suppress(OSError):
        path = _memo_path(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"proven": kept}, indent=1) + "\n")
