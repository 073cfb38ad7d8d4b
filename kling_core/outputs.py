"""Output paths, checked before anything is paid for.

- :func:`check_output`: the folder can take the file, the path is not a directory (nor a
  device), and it is not one of the job's local inputs after resolving links (``-o clip.mp4``
  would otherwise replace the clip being edited); :func:`media_refs` gives those inputs;
- :func:`reserve_default_output`: the default name (``clip-edited.mp4``, ``clip-edited-2.mp4``,
  ...) is created empty with ``O_EXCL``, so two runs on the same clip never pick the same
  name; the saved result later replaces the placeholder atomically;
- :func:`release`: removes a reservation that is still empty (the job failed);
- :func:`staging_file` / :func:`remove_leftovers`: the locked temporary file a result is
  written to beside the output, and the removal of those a killed process left.

Every refusal is one ValidationError naming the field ``output`` (exit code 2).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from kling_core.contract.checks import local_path
from kling_core.contract.models import EditRequest
from kling_core.errors import ValidationError
from kling_core.files import temp_path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

FIELD = "output"
DEFAULT_SUFFIX = "-edited"
# Past this many taken names the folder is full of earlier edits; say so instead of looping.
MAX_DEFAULT_NAMES = 10_000
NEW_FILE_GRACE = 60.0  # seconds before an unlocked .new staging file counts as left behind


def _absolute(dest: str | os.PathLike[str]) -> Path:
    """Absolute, links left as they are (for names and messages)."""
    path = Path(dest).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def _real(path: Path) -> Path:
    """Where the kernel puts it: each link followed before the ``..`` after it (realpath)."""
    return path.resolve()


def _refuse(path: Path, reason: str) -> ValidationError:
    return ValidationError.single(FIELD, f"{path}: {reason}")


def check_suffix(path: Path) -> Path:
    """An output must be an .mp4 name (the CLI's and batches' rule; :func:`check_output`
    checks where it may be written)."""
    if path.suffix.lower() != ".mp4":
        raise ValidationError.single("output", f"{path} must end in .mp4")
    return path


def check_output(dest: str | os.PathLike[str], *, inputs: Sequence[str]) -> Path:
    """The absolute, resolved path to save the result to, or a ValidationError naming ``output``.

    Refused: a directory or any other non-regular file, a folder that cannot be written
    (tried by creating and removing a probe file: permission bits do not tell for root,
    read-only mounts or /proc), a parent that is a file, and the same file as any local
    input in ``inputs`` (paths or file:// URLs; http(s) inputs are skipped), links and hard
    links included. Missing folders are fine when the nearest existing one is writable (the
    save creates them). Nothing is left behind.
    """
    given = _absolute(dest)
    if os.fspath(dest).endswith((os.sep, "/")) or not os.fspath(dest) or given.name in ("", ".", ".."):
        raise _refuse(given, "names a directory, not a file")
    path = _real(given)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # the folder checks below say which
        st = None
    except OSError as exc:
        raise _refuse(given, f"cannot be used ({exc.strerror or exc})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise _refuse(given, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(given, "is not a regular file (a device, pipe or socket)")
    for ref in inputs:
        source = local_path(ref)
        if source is not None and _same_file(path, st, source):
            raise _refuse(given, f"is the same file as the input {ref} (saving would replace it)")
    _check_folder(given, path.parent)
    return path


def media_refs(request: EditRequest | Mapping[str, Any] | None) -> list[str]:
    """The media references of a request, or of a logged request document: the ``inputs``
    of :func:`check_output`."""
    if request is None:
        return []
    if isinstance(request, EditRequest):
        return [ref for _path, ref in request.media()]
    doc = request.get("request") or {}
    refs = [str(doc.get("video") or ""), *[str(i) for i in doc.get("images") or []]]
    for el in doc.get("elements") or []:
        refs += [str(el.get("frontal_image") or ""), *[str(r) for r in el.get("reference_images") or []]]
    return [r for r in refs if r]


def _same_file(path: Path, st: os.stat_result | None, source: Path) -> bool:
    if _real(_absolute(source)) == path:
        return True
    if st is None:
        return False
    try:
        other = source.stat()
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)  # a hard link


def _check_folder(given: Path, folder: Path) -> None:
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise _refuse(given, f"{existing} is not a directory")
    probe = existing / f".kling-write-check-{secrets.token_hex(6)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _refuse(given, f"cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()


def default_stem(video: str) -> str:
    """The base of the default output name: the input's stem, ``video`` for a URL without one."""
    name = Path(unquote(urlparse(video).path)).stem if "://" in video else Path(video).stem
    return name or "video"


def reserve_default_output(video: str, *, folder: Path | None = None) -> Path:
    """Create and return the first free ``<stem>-edited[-N].mp4`` in ``folder`` (default: cwd).

    The name is taken with ``O_CREAT | O_EXCL``: an empty placeholder that a concurrent run
    cannot also take. The saved result replaces it atomically (a rename over it); a failed
    job gives it back with :func:`release`. ValidationError naming ``output`` when the folder
    cannot take a file.
    """
    base = _absolute(folder if folder is not None else Path.cwd())
    stem = default_stem(video)
    for n in range(1, MAX_DEFAULT_NAMES + 1):
        candidate = base / (f"{stem}{DEFAULT_SUFFIX}.mp4" if n == 1 else f"{stem}{DEFAULT_SUFFIX}-{n}.mp4")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                continue
            raise _refuse(candidate, f"cannot create the default output ({exc.strerror or exc})") from None
        os.close(fd)
        return candidate.resolve()
    raise _refuse(base / f"{stem}{DEFAULT_SUFFIX}-N.mp4", f"{MAX_DEFAULT_NAMES} default names are taken; pass -o")


def release(path: str | os.PathLike[str]) -> bool:
    """Remove a reserved output that is still an empty placeholder; True if it was removed.

    A file with content (a saved result, or anything else) is never touched.
    """
    p = Path(path)
    try:
        st = p.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != 0:
        return False
    try:
        p.unlink()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def staging_file(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A new, empty ``.NAME.<hex>.part`` beside ``dest``, locked while the block runs; removed after.

    The writer fills it in place and renames it over ``dest`` when it is verified. The lock
    (``flock``, which the kernel drops when the process dies, ``kill -9`` included) tells
    :func:`remove_leftovers` a live writer from the debris of a killed one.
    """
    staging = temp_path(Path(dest))
    # Created under another name and locked before it takes the .part name, so a cleaner
    # never sees an unlocked .part file of a live writer.
    fresh = staging.with_name(staging.name.removesuffix(".part") + ".new")
    fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh file: nobody else holds it
        os.rename(fresh, staging)
        yield staging
    finally:
        fresh.unlink(missing_ok=True)
        staging.unlink(missing_ok=True)  # gone already after the rename over ``dest``
        os.close(fd)


def remove_leftovers(dest: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed save of ``dest`` left beside it; return them.

    ``.NAME.<hex>.part`` (and ``..NAME.<hex>.part.<hex>.part``, a nested temporary name)
    whose writer is gone: a file a live :func:`staging_file` holds is skipped. A
    ``.NAME.<hex>.new`` (a writer killed between creating and locking it) goes once it is a
    minute old. Without ``flock`` (not POSIX) nothing is removed.
    """
    if fcntl is None:
        return []
    target = _absolute(dest)
    prefixes = (f".{target.name}.", f"..{target.name}.")
    try:
        entries = [e for e in target.parent.iterdir() if e.name.startswith(prefixes) and e.name.endswith((".part", ".new"))]
    except OSError:
        return []
    removed = []
    now = time.time()
    for entry in entries:
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            if entry.name.endswith(".new") and now - st.st_mtime < NEW_FILE_GRACE:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live writer holds it
                continue
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
        finally:
            os.close(fd)
    return removed
